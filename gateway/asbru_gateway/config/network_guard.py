"""Is a base URL's host a public address? Pure: the host is normalised and judged, nothing resolved.

Used where a provider says ``allow_private_network: false`` (the operator renders that for every
LLMProvider that does not opt in), so a base URL cannot point the gateway at itself, the cluster or
a cloud metadata endpoint by mistake. The same judgement is a CEL rule on the LLMProvider CRD
(``asbru_operator.crd_models.provider``); both are tested against one table of address forms.

Normalising first is the point: HTTP clients accept many spellings of one address. An IPv4 host is
any host whose last label is numeric (the WHATWG URL rule): ``0x7f.0.0.1``, ``0177.0.0.1``,
``127.1`` and ``2130706433`` are all 127.0.0.1. Such spellings of a public address are refused
too (write it plainly), since the CEL rule cannot decode them. IPv6 literals are public only in
global unicast (2000::/3), which excludes loopback in any spelling, IPv4-mapped and -compatible
forms, unique-local and link-local addresses; 6to4 (2002::/16) embeds an IPv4 address and is
refused. Names are refused when a public resolver would not answer them: one label (``localhost``,
``kubernetes``, found through search domains), a last label that is no top-level domain (letters,
or ``xn--`` punycode: so ``vllm.my-ns`` is a cluster name), and ``.localhost``, ``.local``,
``.internal``, ``.svc``, ``.home.arpa``, ``.default`` (``kubernetes.default``).

It guards against mistakes and the obvious SSRF, not against DNS: a public name that resolves to a
private address passes, and ``service.namespace`` with an all-letter namespace name looks like a
public domain. Egress still needs a NetworkPolicy.
"""

from __future__ import annotations

import ipaddress
import re

_AUTHORITY = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://([^/?#]*)")
_PRIVATE_V4 = {
    ipaddress.IPv4Network("0.0.0.0/8"): "'this network'",
    ipaddress.IPv4Network("10.0.0.0/8"): "a private address",
    ipaddress.IPv4Network("100.64.0.0/10"): "a carrier-grade NAT address",
    ipaddress.IPv4Network("127.0.0.0/8"): "a loopback address",
    ipaddress.IPv4Network("169.254.0.0/16"): "a link-local address (cloud metadata lives there)",
    ipaddress.IPv4Network("172.16.0.0/12"): "a private address",
    ipaddress.IPv4Network("192.168.0.0/16"): "a private address",
    ipaddress.IPv4Network("224.0.0.0/3"): "a multicast or reserved address",
}
_GLOBAL_V6 = ipaddress.IPv6Network("2000::/3")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
PRIVATE_SUFFIXES = ("localhost", "local", "internal", "svc", "home.arpa", "default")
"""Name suffixes that never resolve publicly (``default``: ``<service>.default``, the namespace)."""
_TLD = re.compile(r"^([a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
_NUMERIC = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


def private_host_reason(url: str) -> str | None:
    """Why ``url``'s host is not a public address, in one readable line; None when it is."""
    match = _AUTHORITY.match(url)
    if match is None:
        return "it has no scheme://host"
    authority = match.group(1)
    if "\\" in authority or "%" in authority:
        return "its host part is escaped (a backslash or percent sign: clients disagree on the host)"
    host = authority.rpartition("@")[2]
    if host.startswith("["):
        return _ipv6_reason(host.partition("]")[0][1:])
    host = host.partition(":")[0].lower().removesuffix(".")
    if not host:
        return "it has an empty host"
    if "" in host.split("."):
        return f"host {host!r} has an empty label"
    if _NUMERIC.match(host.rpartition(".")[2]):
        return _ipv4_reason(host)
    return _name_reason(host)


def _ipv4_reason(host: str) -> str | None:
    address = parse_ipv4(host)
    if address is None:
        return f"host {host!r} ends like an IPv4 address but is none"
    for network, kind in _PRIVATE_V4.items():
        if address in network:
            return f"host {host!r} is {address}, {kind}"
    if host != str(address):
        return f"host {host!r} is {address} written in an unusual form (write {address})"
    return None


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address ``host`` spells in any form HTTP clients accept (hex, octal, 1-4 parts), or None."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = [_ipv4_part(part) for part in parts]
    if any(number is None for number in numbers):
        return None
    *leading, last = [number for number in numbers if number is not None]
    if any(number > 255 for number in leading) or last >= 256 ** (5 - len(parts)):
        return None
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ipv4_part(part: str) -> int | None:
    try:
        if part[:2] == "0x":
            return int(part[2:] or "0", 16)
        if len(part) > 1 and part[0] == "0":
            return int(part[1:], 8)
        return int(part, 10)
    except ValueError:
        return None


def _ipv6_reason(literal: str) -> str | None:
    shown = f"[{literal}]"
    try:
        address = ipaddress.IPv6Address(literal)
    except ValueError:
        return f"host {shown} is not a valid IPv6 address"
    if address.ipv4_mapped is not None:
        return f"host {shown} is the IPv4 address {address.ipv4_mapped}"
    if "." in literal:
        return f"host {shown} embeds an IPv4 address (write the address in hex groups)"
    if address in _SIX_TO_FOUR:
        return f"host {shown} is a 6to4 address (it embeds an IPv4 address)"
    if address not in _GLOBAL_V6:
        kind = "a loopback address" if address.is_loopback else "not a global unicast address"
        return f"host {shown} is {address}, {kind}"
    return None


def _name_reason(host: str) -> str | None:
    if "." not in host:
        return f"host {host!r} is a single-label name (resolved through search domains, e.g. the cluster's)"
    for suffix in PRIVATE_SUFFIXES:
        if host.endswith("." + suffix):
            return f"host {host!r} is a local or cluster-internal name (.{suffix})"
    last = host.rpartition(".")[2]
    if not _TLD.match(last):
        return f"host {host!r} is no public name ({last!r} is no top-level domain; a service.namespace?)"
    return None
