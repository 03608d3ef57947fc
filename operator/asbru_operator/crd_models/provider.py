"""``LLMProvider``: one upstream provider, mirroring the data plane's ``ProviderConfig`` field by field.

Network and pool fields are optional: an unset field inherits the selecting gateway's
``spec.defaults`` and then the data plane's own default, so a fleet-wide timeout is set once.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from asbru_gateway.config.network_guard import PRIVATE_SUFFIXES
from asbru_operator.crd_models.common import (
    BasicStatus,
    CRDModel,
    DNSLabel,
    DNSSubdomain,
    ModelName,
    OpenObject,
    SecretKeySelector,
    cel_rules,
)

# The CEL twin of asbru_gateway.config.network_guard (see its docstring for what counts as private
# and why hosts are normalised first). CEL (RE2) has neither lookahead nor a way to decode 0x7f.1,
# so the rule combines regular expressions over the whole URL: an IPv4 host in any spelling other
# than a public dotted quad, an IPv6 literal outside 2000::/3 (or in 6to4), a name no public
# resolver answers, or an escaped host. Both are tested against one table of address forms.
_LABEL = r"[^./?#@:\[\]\\%]"
_HOST_CHAR = r"[^/?#@:\[\]\\%]"
_NOT_LETTER = r"[^a-z./?#@:\[\]\\%]"
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_PRIVATE_QUAD = (
    r"((0|10|127|22[4-9]|2[3-5][0-9])|169\.254|192\.168|172\.(1[6-9]|2[0-9]|3[01])"
    r"|100\.(6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7]))\.[0-9.]*"
)


def _url_with_host(host: str) -> str:
    """A regular expression matching an http(s) URL whose host matches ``host``."""
    return r"(?i)^https?://([^/?#]*@)?(" + host + r")\.?(:[0-9]*)?([/?#].*)?$"


HOST_PATTERNS = {
    "escaped": r"(?i)^https?://[^/?#]*[\\%]",
    "empty_label": r"(?i)^https?://([^/?#]*@)?(\.|[^/?#@\[]*\.\.)",
    "single_label": _url_with_host(_LABEL + "+"),
    "private_suffix": _url_with_host(
        _HOST_CHAR + r"*\.(" + "|".join(re.escape(suffix) for suffix in PRIVATE_SUFFIXES) + ")"
    ),
    "no_tld": _url_with_host("(" + _LABEL + r"+\.)+([a-z]|[a-z]*" + _NOT_LETTER + _LABEL + "*)"),
    "punycode_tld": _url_with_host("(" + _LABEL + r"+\.)+xn--" + _LABEL + "*"),
    "dotted_quad": _url_with_host(_OCTET + r"(\." + _OCTET + "){3}"),
    "private_quad": _url_with_host(_PRIVATE_QUAD),
    "ipv6": _url_with_host(r"\[[^\]]*\]"),
    "global_ipv6": _url_with_host(r"\[[23][0-9a-f]{3}:[0-9a-f:]*\]"),
    "six_to_four": _url_with_host(r"\[2002:[^\]]*\]"),
}
"""Regular expressions over a whole base URL, combined by ``private_url_rule``."""


def _cel_string(value: str) -> str:
    """A CEL string literal of ``value`` (backslashes and quotes escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def private_url_rule(url: str = "self.baseURL") -> str:
    """A CEL expression, true when ``url`` points at a host that is not a public address."""

    def m(name: str) -> str:
        return f"{url}.matches({_cel_string(HOST_PATTERNS[name])})"

    return " || ".join(
        [
            m("escaped"),
            m("empty_label"),
            m("single_label"),
            m("private_suffix"),
            f"({m('no_tld')} && !{m('punycode_tld')} && !({m('dotted_quad')} && !{m('private_quad')}))",
            f"({m('ipv6')} && !({m('global_ipv6')} && !{m('six_to_four')}))",
        ]
    )


PROVIDER_RULES = [
    {
        "rule": "!(has(self.baseURL) && has(self.serviceRef))",
        "message": "baseURL and serviceRef are mutually exclusive: set at most one",
        "reason": "FieldValueForbidden",
    },
    {
        "rule": "!has(self.baseURL) || self.baseURL.matches("
        + _cel_string(r"(?i)^https?://[^/?#\s]+([/?#].*)?$")
        + ")",
        "message": "baseURL must be an http:// or https:// URL with a host",
        "fieldPath": ".baseURL",
        "reason": "FieldValueInvalid",
    },
    {
        "rule": (
            "!has(self.baseURL) || (has(self.allowPrivateNetwork) && self.allowPrivateNetwork)"
            " || !(" + private_url_rule() + ")"
        ),
        "message": (
            "baseURL points at a private, loopback, link-local, cluster-internal or metadata address;"
            " set allowPrivateNetwork: true if that is intended (or use serviceRef for in-cluster services)"
        ),
        "fieldPath": ".baseURL",
        "reason": "FieldValueForbidden",
    },
]
KEY_RULES = [
    {
        "rule": "self.all(k, self.filter(j, j.name == k.name).size() == 1)",
        "message": "key names must be unique within a provider",
        # Not reason FieldValueDuplicate: the API server renders that as "Duplicate value: <value>",
        # dropping the message and naming no key.
        "messageExpression": '"key names must be unique within a provider: \'"'
        " + self.filter(k, self.filter(j, j.name == k.name).size() > 1)[0].name"
        ' + "\' is used more than once"',
        "reason": "FieldValueInvalid",
    }
]
NETWORK_RULES = [
    {
        "rule": "!has(self.backoffInitialSeconds) || !has(self.backoffMaxSeconds)"
        " || self.backoffInitialSeconds <= self.backoffMaxSeconds",
        "message": "backoffInitialSeconds must not exceed backoffMaxSeconds",
    }
]

Seconds = Annotated[float, Field(gt=0, le=3600)]
HeaderName = Annotated[str, Field(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$", min_length=1, max_length=256)]


class Overflow(StrEnum):
    REJECT = "reject"
    WAIT = "wait"


class NetworkSpec(CRDModel, json_schema_extra=cel_rules(*NETWORK_RULES)):
    """Timeouts, retries and extra headers of upstream calls (unset: the gateway's defaults)."""

    connect_timeout_seconds: float | None = Field(None, gt=0, le=300)
    request_timeout_seconds: Seconds | None = None
    stream_idle_timeout_seconds: Seconds | None = None
    max_retries: int | None = Field(None, ge=0, le=10)
    backoff_initial_seconds: float | None = Field(None, ge=0, le=60)
    backoff_max_seconds: float | None = Field(None, ge=0, le=300)
    retry_after_max_seconds: float | None = Field(None, ge=0, le=600)
    headers: dict[HeaderName, Annotated[str, Field(max_length=4096)]] | None = Field(
        None, max_length=32, description="Extra headers sent upstream (never credentials: use keys)."
    )


class PoolSpec(CRDModel):
    """The provider's isolation boundary: bounded concurrency and queue (unset: gateway defaults)."""

    concurrency: int | None = Field(None, ge=1, le=10_000)
    queue_size: int | None = Field(None, ge=0, le=100_000)
    overflow: Overflow | None = None
    queue_timeout_seconds: float | None = Field(None, gt=0, le=600)


class ServiceRef(CRDModel):
    """An in-cluster Service as the provider's address (http://name.namespace.svc:port)."""

    name: DNSLabel
    namespace: DNSLabel | None = Field(None, description="Default: the provider's namespace.")
    port: int = Field(80, ge=1, le=65535)
    scheme: Annotated[str, Field(pattern=r"^https?$", max_length=5)] = "http"
    path: Annotated[str, Field(pattern=r"^/[^\s?#]*$", max_length=1024)] | None = None


class KeySpec(CRDModel):
    """One API key: where it lives (a Secret key), its weight and which models it may serve."""

    name: DNSLabel
    secret_key_ref: SecretKeySelector
    weight: float = Field(1.0, gt=0, le=1_000_000)
    models: list[ModelName] = Field(
        default_factory=list, max_length=256, description="Only these (empty: all)."
    )
    exclude_models: list[ModelName] = Field(default_factory=list, max_length=256)


class LLMProviderSpec(CRDModel, json_schema_extra=cel_rules(*PROVIDER_RULES)):
    """Desired state of an LLMProvider."""

    type: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=63)] = Field(
        description="Provider type id: openai, azure, anthropic, gemini, echo, groq, ..."
    )
    base_url: Annotated[str, Field(min_length=1, max_length=2048)] | None = Field(
        None, alias="baseURL", description="Upstream base URL (default: the provider type's)."
    )
    service_ref: ServiceRef | None = None
    allow_private_network: bool = Field(
        False, description="Allow a baseURL on a private, loopback or link-local network."
    )
    keys: list[KeySpec] = Field(default_factory=list, max_length=64, json_schema_extra=cel_rules(*KEY_RULES))
    network: NetworkSpec | None = None
    pool: PoolSpec | None = None
    api_version: Annotated[str, Field(max_length=64)] | None = Field(
        None, description="Azure api-version or Anthropic anthropic-version."
    )
    deployments: dict[ModelName, DNSSubdomain] | None = Field(
        None, max_length=256, description="Azure: model name -> deployment name."
    )
    models: list[ModelName] = Field(
        default_factory=list, max_length=1024, description="Listed by /v1/models."
    )
    options: OpenObject | None = Field(None, description="Type-specific extras, passed through as-is.")


class LLMProviderStatus(BasicStatus):
    """Observed state of an LLMProvider: Accepted, ResolvedRefs (its Secrets), Ready."""
