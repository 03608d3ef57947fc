"""The gateway's private base URL guard: the host is normalised, then judged (one table, shared
with the LLMProvider CEL rule's test), and ProviderConfig applies it when told to."""

from __future__ import annotations

import ipaddress

import pytest

from asbru_gateway.config.errors import ConfigError
from asbru_gateway.config.loader import parse_config
from asbru_gateway.config.network_guard import parse_ipv4, private_host_reason
from tests.address_forms import BASE_URLS


@pytest.mark.parametrize(("url", "private"), BASE_URLS.items())
def test_base_url_forms(url: str, private: bool) -> None:
    reason = private_host_reason(url)
    assert (reason is not None) is private, reason
    if reason is not None:
        assert "\n" not in reason


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://0x7f.0.0.1", "is 127.0.0.1, a loopback address"),
        ("http://0xa9.0xfe.0xa9.0xfe", "is 169.254.169.254, a link-local address (cloud metadata"),
        ("http://2130706433", "is 127.0.0.1"),
        ("http://[0:0:0:0:0:0:0:1]", "::1, a loopback address"),
        ("http://[::ffff:127.0.0.1]", "is the IPv4 address 127.0.0.1"),
        ("http://kubernetes.default", "cluster-internal name (.default)"),
        ("http://kubernetes", "single-label name"),
        ("http://0x08.0x08.0x08.0x08", "is 8.8.8.8 written in an unusual form (write 8.8.8.8)"),
    ],
)
def test_the_reason_names_the_normalised_address(url: str, says: str) -> None:
    assert says in (private_host_reason(url) or "")


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("1.2.65535", "1.2.255.255"),
    ],
)
def test_ipv4_spellings(host: str, address: str) -> None:
    assert parse_ipv4(host) == ipaddress.IPv4Address(address)


@pytest.mark.parametrize("host", ["1.2.3.4.5", "256.1.1.1", "1.2.65536", "09.1.1.1", "0xg.1.1.1", "a.1"])
def test_not_ipv4(host: str) -> None:
    assert parse_ipv4(host) is None


def _provider_config(**provider: object) -> dict[str, object]:
    return {"schemaVersion": "asbru.dev/v1alpha1", "providers": [{"name": "p", "type": "vllm", **provider}]}


def test_a_provider_that_disallows_private_networks_refuses_such_a_base_url() -> None:
    with pytest.raises(ConfigError, match=r"providers\.0: .*0x7f\.0\.0\.1.* is 127\.0\.0\.1"):
        parse_config(_provider_config(base_url="http://0x7f.0.0.1/v1", allow_private_network=False))
    parse_config(_provider_config(base_url="https://api.example.com/v1", allow_private_network=False))


def test_local_configs_allow_private_networks_by_default() -> None:
    config = parse_config(_provider_config(base_url="http://127.0.0.1:8000/v1"))
    assert config.providers[0].allow_private_network is True
