"""``LLMProvider``: one upstream provider, mirroring the data plane's ``ProviderConfig`` field by field.

Network and pool fields are optional: an unset field inherits the selecting gateway's
``spec.defaults`` and then the data plane's own default, so a fleet-wide timeout is set once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

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

# A host a CEL rule can see is private, loopback, link-local, CGNAT, cluster-internal or a cloud
# metadata endpoint. It is a guard against mistakes and the obvious SSRF, not a network policy: a
# public name that resolves to a private address passes, so egress still needs a NetworkPolicy.
_PRIVATE_HOST = (
    r"(localhost|.*\.localhost|metadata|metadata\.google\.internal|.*\.internal|.*\.local|.*\.svc"
    r"|0|0x[0-9a-f]+|[0-9]+|0\.[0-9.]*|127\.[0-9.]*|10\.[0-9.]*|192\.168\.[0-9.]*|169\.254\.[0-9.]*"
    r"|172\.(1[6-9]|2[0-9]|3[01])\.[0-9.]*|100\.(6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7])\.[0-9.]*"
    r"|\[(::1?|::ffff:.*|f[cd][0-9a-f]{0,2}:.*|fe[89ab][0-9a-f]?:.*)\])"
)
PRIVATE_URL_REGEX = r"(?i)^https?://([^/?#@]*@)?" + _PRIVATE_HOST + r"\.?(:[0-9]*)?([/?#].*)?$"
"""Matches a base URL whose host is not a public address (see the comment above for limits)."""


def _cel_string(value: str) -> str:
    """A CEL string literal of ``value`` (backslashes and quotes escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


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
            " || !self.baseURL.matches(" + _cel_string(PRIVATE_URL_REGEX) + ")"
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
