"""The governance section of the config contract: virtual keys, teams, limits, budgets, prices, Redis.

What a platform team declares to control who may call which models, how fast and for how much.
The same shapes come from a config file (local use: a key's value from ``env:``/``file:``) and from
the operator (``LLMVirtualKey``/``LLMTeam`` resources: only a *salted hash* of the value, so a
ConfigMap never holds a key). Kept beside ``model.py`` so that module stays the small core contract.

Units, and why: token limits are whole tokens; USD is a float here (readable) and becomes whole
micro-dollars in the counters (exact integer arithmetic in Redis); windows are named periods, not
seconds, so ``kubectl get`` and the ``RateLimit-Policy`` header can say what they mean.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from asbru_gateway.config.compat import ContractModel

_NAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
_SECRET_REF = r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:/.+|secret:[A-Za-z0-9._-]+)$"  # noqa: S105 - a pattern
_MCP_SERVER = r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$"
"""An MCP server's name (``config.mcp.ServerName``)."""
KEY_HASH_PATTERN = r"^sha256:[0-9a-f]{16,64}:[0-9a-f]{64}$"
"""``sha256:<salt hex>:<hex of sha256(salt bytes + key value)>``: what the operator renders."""

Name = Annotated[str, Field(pattern=_NAME)]
Glob = Annotated[str, Field(min_length=1, max_length=256)]
Globs = Annotated[tuple[Glob, ...], Field(max_length=256)]


_Frozen = ContractModel


class Period(StrEnum):
    """A budget's period. Calendar periods start at 00:00 UTC (weeks on Monday, months on the 1st)."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class Reset(StrEnum):
    CALENDAR = "calendar"
    """The budget refills at the start of each calendar period (UTC)."""
    ROLLING = "rolling"
    """The budget covers the last period's length (a month is 30 days), sliding."""


class FailurePolicy(StrEnum):
    """What a request gets while the shared counter store (Redis) is down or slow."""

    OPEN = "open"
    """Served without being counted (availability first); counted again once Redis is back."""
    CLOSED = "closed"
    """Refused with 503 ``governance_unavailable`` in the caller's dialect (limits first)."""


class RateLimits(_Frozen):
    """Sliding-window limits: never more than N in any window of that length (a minute, an hour, a day)."""

    requests_per_minute: int | None = Field(None, ge=1)
    requests_per_hour: int | None = Field(None, ge=1)
    requests_per_day: int | None = Field(None, ge=1)
    tokens_per_minute: int | None = Field(None, ge=1)
    tokens_per_hour: int | None = Field(None, ge=1)
    tokens_per_day: int | None = Field(None, ge=1)


class Budget(_Frozen):
    """Spend allowed per period: USD, tokens, or both (each one a limit of its own)."""

    period: Period
    reset: Reset = Reset.CALENDAR
    usd: float | None = Field(None, gt=0, le=1e9)
    tokens: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _something(self) -> Budget:
        if self.usd is None and self.tokens is None:
            raise ValueError("a budget needs usd, tokens or both")
        return self


Budgets = Annotated[tuple[Budget, ...], Field(max_length=16)]


class Allowed(_Frozen):
    """What a key may call, as glob patterns (``*``, ``?``, ``[...]``); an empty list allows all.

    ``models`` match the model name the client sends (a route, ``provider/model``, or a bare name);
    ``routes`` match route names (requests to a route); ``providers`` match the provider a request
    resolves to (each target of a route). A request's own ``fallbacks`` are checked the same way.
    """

    models: Globs = ()
    routes: Globs = ()
    providers: Globs = ()


McpServerName = Annotated[str, Field(pattern=_MCP_SERVER)]
McpGrants = Annotated[
    dict[McpServerName, tuple[Glob, ...]],
    Field(
        max_length=256,
        description="MCP server name -> the tool patterns (server's own tool names, globs) this key "
        "may see and call. A server not listed: none of its tools (deny by default), unless the "
        "server's own access grants name the key.",
    ),
]


class VirtualKeyConfig(_Frozen):
    """A credential the gateway hands out, with what it may do. Its value is never in the config."""

    name: Name
    secret: str | None = Field(None, pattern=_SECRET_REF, description="env:/file:/secret: reference.")
    hash: str | None = Field(None, pattern=KEY_HASH_PATTERN, description="Salted hash (operator).")
    team: Name | None = None
    allowed: Allowed = Field(default_factory=Allowed)
    rate_limits: RateLimits = Field(default_factory=RateLimits)  # type: ignore[arg-type]
    budgets: Budgets = ()
    expires_at: datetime | None = Field(None, description="After this instant the key is refused (401).")
    disabled: bool = False
    mcp: McpGrants = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_value(self) -> VirtualKeyConfig:
        if (self.secret is None) == (self.hash is None):
            raise ValueError(f"virtual key {self.name!r}: give exactly one of secret and hash")
        return self

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("expires_at needs a time zone (e.g. 2030-01-01T00:00:00Z)")
        return value


class TeamConfig(_Frozen):
    """A group of keys sharing limits and budgets of its own (on top of each key's)."""

    name: Name
    rate_limits: RateLimits = Field(default_factory=RateLimits)  # type: ignore[arg-type]
    budgets: Budgets = ()


class ProviderBudget(_Frozen):
    """A budget on everything one provider serves through this gateway (all keys, no key)."""

    provider: Name
    budgets: Budgets = Field(min_length=1)


class PriceOverride(_Frozen):
    """A price that replaces the shipped table's: custom deployments, discounts, self-hosted models.

    The most specific match wins: provider and model, then model only, then provider only
    (``model: "*"``). USD per million tokens.
    """

    provider: Name | None = None
    model: Glob = "*"
    input_per_mtok: float = Field(ge=0, le=1e6)
    output_per_mtok: float = Field(ge=0, le=1e6)
    cached_input_per_mtok: float | None = Field(None, ge=0, le=1e6)


class RedisConfig(_Frozen):
    """The shared counter store. Exact limits across replicas and workers need it."""

    url: str = Field(
        description="redis://[user@]host:port/db (no password in it), or a secret reference to a full URL."
    )
    password: str | None = Field(None, pattern=_SECRET_REF)
    key_prefix: str = Field("asbru", pattern=r"^[A-Za-z0-9:_.-]{1,64}$")
    timeout_ms: int = Field(100, ge=1, le=60_000, description="Connect and command timeout.")
    on_failure: FailurePolicy = FailurePolicy.OPEN
    retry_interval_s: float = Field(
        1.0, gt=0, le=300, description="After a failure, Redis is skipped (policy applies) this long."
    )
    max_connections: int = Field(64, ge=1, le=10_000)

    @field_validator("url")
    @classmethod
    def _url_or_ref(cls, value: str) -> str:
        if re.match(_SECRET_REF, value):
            return value
        if not re.match(r"^(redis|rediss|unix)://", value):
            raise ValueError("url must be redis://, rediss://, unix:// or a secret reference")
        if re.match(r"^[a-z]+://[^/@]*:[^/@]*@", value):
            raise ValueError("url holds a password: use a secret reference (or `password`) instead")
        return value

    def secret_refs(self) -> list[str]:
        refs = [self.url] if re.match(_SECRET_REF, self.url) else []
        return refs + ([self.password] if self.password else [])


class GovernanceConfig(_Frozen):
    """Virtual keys, teams and budgets, enforced by the built-in ``governance`` plugin."""

    require_virtual_key: bool = Field(False, description="Refuse (401) requests without a valid key.")
    order: int = Field(-50, description="The governance plugin's place among the plugins.")
    redis: RedisConfig | None = Field(None, description="None: exact counters in this process only.")
    virtual_keys: tuple[VirtualKeyConfig, ...] = Field((), max_length=10_000)
    teams: tuple[TeamConfig, ...] = Field((), max_length=1_000)
    provider_budgets: tuple[ProviderBudget, ...] = Field((), max_length=256)
    prices: tuple[PriceOverride, ...] = Field((), max_length=1_000)
    reserve_completion_tokens: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="Completion tokens reserved for a request that sets no max_tokens (its actual "
        "usage is settled after the answer either way).",
    )
    cost_header: bool = Field(True, description="Send x-asbru-cost (USD) with non-stream answers.")
    usage_accounting: bool = Field(
        True,
        description="Count requests, tokens and cost per key, team, provider and model per day and "
        "month in the store (the management API and kubectl read them).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> GovernanceConfig:
        _unique("virtual key", [key.name for key in self.virtual_keys])
        _unique("team", [team.name for team in self.teams])
        _unique("provider budget", [budget.provider for budget in self.provider_budgets])
        teams = {team.name for team in self.teams}
        for key in self.virtual_keys:
            if key.team is not None and key.team not in teams:
                raise ValueError(f"virtual key {key.name!r} names unknown team {key.team!r}")
        return self

    def check_providers(self, known: set[str]) -> None:
        for budget in self.provider_budgets:
            if budget.provider not in known:
                raise ValueError(f"governance.provider_budgets names unknown provider {budget.provider!r}")

    def secret_refs(self) -> list[str]:
        refs = [key.secret for key in self.virtual_keys if key.secret is not None]
        return refs + (self.redis.secret_refs() if self.redis else [])


def _unique(kind: str, names: list[str]) -> None:
    if len(names) != len(set(names)):
        duplicate = next(name for name in names if names.count(name) > 1)
        raise ValueError(f"duplicate {kind} name {duplicate!r}")
