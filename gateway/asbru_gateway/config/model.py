"""The gateway's configuration contract: ``GatewayConfig``.

This is the only thing the control plane (the Kubernetes operator, a config file, the embedded
default) and the data plane share. It knows nothing of Kubernetes: the operator renders custom
resources into it, a file loader parses it from YAML/JSON, and the gateway applies it.

Rules the contract keeps, and why:

- Frozen and validated once at load time (pydantic, ``extra="forbid"``): a typo in a field name is an
  error that names the field, never a silently ignored setting. Pydantic is fine here because it
  never runs per request; the hot path only reads attributes.
- ``schema_version`` is checked: a gateway refuses a config written for another major version and
  keeps serving the last good one (the Envoy AI Gateway rule). ``schema_minor`` counts additive
  revisions within it: a config of a newer minor is read leniently, its unknown fields ignored, so
  old pods keep serving during a rolling upgrade (``asbru_gateway.config.compat`` has the rule).
- Secrets are *references* (``env:NAME``, ``file:PATH``, ``secret:KEY``), never values, so a
  config can be printed, diffed, hashed and stored in a ConfigMap without leaking a credential.
  ``secret:KEY`` is resolved against a mapping the config source supplies (the Kubernetes source
  reads it from the gateway's Secret).
- ``revision`` is a content hash of the canonical JSON form: same config, same revision, on every
  replica and every renderer, so "N of M pods run revision R" is meaningful.
"""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import Field, field_validator, model_validator

from asbru_gateway.config.compat import ContractModel, canonical_dump, since
from asbru_gateway.config.governance import GovernanceConfig
from asbru_gateway.config.mcp import McpConfig
from asbru_gateway.config.network_guard import private_host_reason

SCHEMA_VERSION: Final = "asbru.dev/v1alpha1"
"""The config schema this gateway understands. The operator writes it; the gateway checks it."""
SCHEMA_MINOR: Final = 3
"""The newest additive revision of ``SCHEMA_VERSION`` this gateway knows (``since(n)`` marks fields).

1: ``schemaMinor`` itself; ``ProviderConfig.allow_private_network``.
2: the ``mcp`` section.
3: the ``governance`` section.
"""

_OPTIONAL_SECTIONS: Final = ("mcp", "governance")
_NAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
_SECRET_REF = r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:/.+|secret:[A-Za-z0-9._-]+)$"  # noqa: S105 - a pattern, not a secret

Name = Annotated[str, Field(pattern=_NAME, description="DNS-label style name: lowercase, digits, '-'.")]
SecretRef = Annotated[
    str,
    Field(
        pattern=_SECRET_REF,
        description="Where a secret value lives: env:NAME, file:/path or secret:KEY (source-supplied).",
    ),
]


_Frozen = ContractModel


class Overflow(StrEnum):
    """What a full provider pool does with one more request."""

    REJECT = "reject"
    """Answer 503 with Retry-After at once: the caller (or a fallback) decides."""
    WAIT = "wait"
    """Queue up to ``queue_size`` requests, each for at most ``queue_timeout_s``."""


class FallbackTrigger(StrEnum):
    """Typed failures after which the router tries the next target."""

    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    CONNECT_ERROR = "connect_error"
    POOL_FULL = "pool_full"
    AUTH_ERROR = "auth_error"
    BAD_REQUEST = "bad_request"


DEFAULT_FALLBACK_TRIGGERS: tuple[FallbackTrigger, ...] = (
    FallbackTrigger.RATE_LIMITED,
    FallbackTrigger.SERVER_ERROR,
    FallbackTrigger.TIMEOUT,
    FallbackTrigger.CONNECT_ERROR,
    FallbackTrigger.POOL_FULL,
)


class PoolConfig(_Frozen):
    """Bounded concurrency and queue of one provider: its isolation boundary."""

    concurrency: int = Field(64, ge=1, le=10_000, description="Upstream requests in flight at once.")
    queue_size: int = Field(256, ge=0, le=100_000, description="Requests waiting for a slot.")
    overflow: Overflow = Field(Overflow.WAIT, description="What happens when the queue is full too.")
    queue_timeout_s: float = Field(10.0, gt=0, le=600, description="Longest wait for a slot (wait mode).")


class NetworkConfig(_Frozen):
    """Timeouts, retries and extra headers for one provider's upstream calls.

    The defaults are chosen so that a stalled upstream costs a client seconds, not minutes: a stream
    that produces no first event within ``first_token_timeout_s`` moves on to the next target, and a
    failure is retried in place only when that is likely to help (a refused connection, a short
    ``Retry-After``); otherwise the next target is tried first (``routing.backoff``).
    """

    connect_timeout_s: float = Field(5.0, gt=0, le=300)
    request_timeout_s: float = Field(
        120.0,
        gt=0,
        le=3600,
        description="Whole non-streaming attempt, its wait for a pool slot included (the answer "
        "arrives all at once).",
    )
    first_token_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="Streams: longest wait for the upstream's first event."
    )
    stream_idle_timeout_s: float = Field(
        60.0, gt=0, le=3600, description="Streams: longest wait between two chunks."
    )
    max_retries: int = Field(2, ge=0, le=10, description="Retries after the first attempt, same target.")
    backoff_initial_s: float = Field(0.2, ge=0, le=60)
    backoff_max_s: float = Field(5.0, ge=0, le=300)
    retry_in_place_max_s: float = Field(
        1.0,
        ge=0,
        le=60,
        description="A Retry-After up to this long is waited for on the same target even when a "
        "fallback exists; longer ones move on to the fallback first.",
    )
    retry_after_max_s: float = Field(
        30.0, ge=0, le=600, description="Longest upstream Retry-After honoured when no fallback is left."
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers sent upstream.")

    @field_validator("headers")
    @classmethod
    def _no_auth_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for header in value:
            if header.lower() in {"authorization", "api-key", "x-api-key", "x-goog-api-key"}:
                raise ValueError(f"header {header!r} carries a credential: declare it as a key instead")
        return value


class KeyConfig(_Frozen):
    """One API key of a provider, chosen by weighted random among the keys allowed for a model."""

    name: Name
    secret: SecretRef
    weight: float = Field(1.0, gt=0, le=1_000_000)
    models: tuple[str, ...] = Field((), description="Only these models (empty: all).", max_length=256)
    exclude_models: tuple[str, ...] = Field((), description="Never these models.", max_length=256)


class ProviderConfig(_Frozen):
    """One upstream provider: its type (which translator), where it is, its keys, network and pool."""

    name: Name
    type: str = Field(description="Provider type id: openai, azure, anthropic, gemini, echo, groq, ...")
    base_url: str | None = Field(None, description="Default comes from the provider type.")
    allow_private_network: bool = Field(
        default=True,
        description="False: refuse a base_url whose host is not a public address (network_guard).",
        json_schema_extra=since(1),
    )
    keys: tuple[KeyConfig, ...] = Field((), max_length=64)
    network: NetworkConfig = Field(default_factory=NetworkConfig)  # type: ignore[arg-type]
    pool: PoolConfig = Field(default_factory=PoolConfig)  # type: ignore[arg-type]
    api_version: str | None = Field(None, description="Azure api-version, Anthropic anthropic-version.")
    deployments: dict[str, str] = Field(
        default_factory=dict, description="Azure: model name -> deployment name (default: same)."
    )
    models: tuple[Annotated[str, Field(min_length=1, max_length=256)], ...] = Field(
        (), description="Models listed by /v1/models (and used as metric labels).", max_length=1024
    )
    options: dict[str, Any] = Field(default_factory=dict, description="Type-specific extras (echo latency).")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("base_url must be an http:// or https:// URL")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _unique_keys(self) -> ProviderConfig:
        names = [key.name for key in self.keys]
        if len(names) != len(set(names)):
            raise ValueError(f"provider {self.name!r}: key names must be unique")
        return self

    @model_validator(mode="after")
    def _public_base_url(self) -> ProviderConfig:
        reason = (
            private_host_reason(self.base_url) if self.base_url and not self.allow_private_network else None
        )
        if reason is not None:
            raise ValueError(f"base_url: {reason}; set allow_private_network: true if that is intended")
        return self


class RouteTarget(_Frozen):
    """One provider+model a route may send to. Lower priority is tried first; weight splits a tier."""

    provider: Name
    model: str = Field(min_length=1, max_length=256)
    weight: float = Field(1.0, gt=0)
    priority: int = Field(0, ge=0, le=100)


class RouteConfig(_Frozen):
    """A model name clients call, mapped onto provider/model targets with fallbacks."""

    name: str = Field(min_length=1, max_length=256)
    targets: tuple[RouteTarget, ...] = Field(min_length=1, max_length=32)
    fallback_on: tuple[FallbackTrigger, ...] = DEFAULT_FALLBACK_TRIGGERS


class PluginConfig(_Frozen):
    """One plugin instance; ``order`` sorts pre-hooks (post-hooks run in reverse)."""

    name: Name
    type: str
    order: int = 0
    enabled: bool = True
    settings: dict[str, Any] = Field(default_factory=dict)


class ServerConfig(_Frozen):
    """Limits of the client-facing HTTP API."""

    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    drain_timeout_s: float = Field(30.0, ge=0, le=3600, description="Grace for replaced pools' work.")
    request_deadline_s: float = Field(
        300.0,
        gt=0,
        le=3600,
        description="Longest a request may spend on upstream attempts, retries and fallbacks together "
        "(streams: until their first event).",
    )
    expose_models: bool = True


class GatewayConfig(_Frozen):
    """Everything one gateway serves. Immutable; a change is a new object and a new revision."""

    schema_version: Literal["asbru.dev/v1alpha1"] = Field(SCHEMA_VERSION, alias="schemaVersion")
    schema_minor: int = Field(
        default=0,
        ge=0,
        alias="schemaMinor",
        description="Additive revision of schemaVersion this config is written for (absent: 0).",
        json_schema_extra=since(1),
    )
    server: ServerConfig = Field(default_factory=ServerConfig)  # type: ignore[arg-type]
    providers: tuple[ProviderConfig, ...] = Field((), max_length=256)
    routes: tuple[RouteConfig, ...] = Field((), max_length=1024)
    plugins: tuple[PluginConfig, ...] = Field((), max_length=64)
    mcp: McpConfig | None = Field(None, json_schema_extra=since(2))
    """MCP servers, agent mode, the gateway's own /mcp endpoint (``config.mcp``). Absent, it is left
    out of the canonical form (a newer field at its default), so a config without MCP keeps its
    revision and an older gateway still reads it."""
    governance: GovernanceConfig | None = Field(None, json_schema_extra=since(3))
    """Virtual keys, teams, limits, budgets, prices (``config.governance``); absent, left out of the
    canonical form like ``mcp``."""

    @model_validator(mode="after")
    def _consistent(self) -> GatewayConfig:
        _require_unique("provider", [p.name for p in self.providers])
        _require_unique("route", [r.name for r in self.routes])
        _require_unique("plugin", [p.name for p in self.plugins])
        known = {p.name for p in self.providers}
        for route in self.routes:
            for target in route.targets:
                if target.provider not in known:
                    raise ValueError(f"route {route.name!r} targets unknown provider {target.provider!r}")
        if self.governance is not None:
            self.governance.check_providers(known)
        return self

    def canonical_json(self) -> bytes:
        """Stable bytes of this config: sorted keys, defaults included. What the revision hashes.

        Fields newer than the config's own ``schema_minor`` are left out while they hold their
        default, so a reader of any minor computes the revision the writer computed.
        """
        dumped = canonical_dump(self, self.schema_minor)
        for section in _OPTIONAL_SECTIONS:  # an absent optional section is no section, whatever the minor
            if getattr(self, section) is None:
                dumped.pop(section, None)
        return orjson.dumps(dumped, option=orjson.OPT_SORT_KEYS)

    @property
    def revision(self) -> str:
        """Content hash: equal configs have equal revisions on every replica."""
        return hashlib.sha256(self.canonical_json()).hexdigest()[:16]

    def secret_refs(self) -> list[str]:
        """Every secret reference the config makes (provider keys, and what later sections add)."""
        refs = [key.secret for provider in self.providers for key in provider.keys]
        refs += self.mcp.secret_refs() if self.mcp is not None else []
        return refs + (self.governance.secret_refs() if self.governance is not None else [])

    def provider(self, name: str) -> ProviderConfig | None:
        for provider in self.providers:
            if provider.name == name:
                return provider
        return None


def _require_unique(kind: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"duplicate {kind} name {name!r}")
        seen.add(name)
