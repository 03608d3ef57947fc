"""``LLMVirtualKey`` and ``LLMTeam``, and the governance section of ``LLMGateway``.

The shapes mirror the gateway's config contract (``asbru_gateway.config.governance``) in
camelCase; the renderer maps one onto the other. A key's value is never in a spec: it lives in a
Secret (generated and owned by the key, or the user's own for rotation), and the gateway's
ConfigMap gets only its salted hash.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from asbru_gateway.config.governance import FailurePolicy, McpServerName, Period, Reset
from asbru_operator.crd_models.common import (
    BasicStatus,
    CRDModel,
    DNSLabel,
    LabelSelector,
    ModelName,
    SecretKeySelector,
)

Glob = Annotated[str, Field(min_length=1, max_length=256)]
Globs = Annotated[list[Glob], Field(max_length=64)]
Summary = Annotated[str, Field(max_length=256)]


class RateLimitsSpec(CRDModel):
    """Sliding-window limits: at most N in any minute, hour or day."""

    requests_per_minute: int | None = Field(None, ge=1)
    requests_per_hour: int | None = Field(None, ge=1)
    requests_per_day: int | None = Field(None, ge=1)
    tokens_per_minute: int | None = Field(None, ge=1)
    tokens_per_hour: int | None = Field(None, ge=1)
    tokens_per_day: int | None = Field(None, ge=1)


class BudgetSpec(CRDModel):
    """USD and/or tokens per day, week or month (calendar periods start 00:00 UTC, or rolling)."""

    period: Period
    reset: Reset = Reset.CALENDAR
    usd: float | None = Field(None, gt=0, le=1e9)
    tokens: int | None = Field(None, ge=1)


class AllowedSpec(CRDModel):
    """Glob patterns of what a key may call; an empty list allows everything."""

    models: Globs = Field(default_factory=list)
    routes: Globs = Field(default_factory=list)
    providers: Globs = Field(default_factory=list)


class LLMVirtualKeySpec(CRDModel):
    """Desired state of an LLMVirtualKey."""

    secret_ref: SecretKeySelector | None = Field(
        None,
        description="Take the key's value from this Secret (rotate it there). Default: a value the "
        "operator generates into an owned Secret named <key>-virtual-key (data key 'key').",
    )
    team: DNSLabel | None = Field(None, description="An LLMTeam in this namespace whose limits apply too.")
    allowed: AllowedSpec | None = None
    rate_limits: RateLimitsSpec | None = None
    budgets: list[BudgetSpec] = Field(default_factory=list, max_length=8)
    expires_at: Annotated[str, Field(max_length=64, json_schema_extra={"format": "date-time"})] | None = None
    disabled: bool = False
    gateway_selector: LabelSelector | None = Field(None, description="Default: every LLMGateway here.")
    mcp: dict[McpServerName, Globs] = Field(
        default_factory=dict,
        max_length=64,
        description="MCP tools this key may see and call: LLMMCPServer name -> tool name globs (the "
        "server's own names, e.g. get_* or *). A server not listed: none of its tools, unless the "
        "LLMMCPServer's virtualKeys grant them.",
    )


class UsageStatus(BasicStatus):
    """What ``kubectl get`` shows: spend, budget and remaining for the current window (refreshed
    from the gateways every few seconds, at most 30 s old)."""

    spend: Summary | None = Field(None, description="Spend in the current window of the first budget.")
    budget: Summary | None = None
    remaining: Summary | None = None
    usage_refreshed_at: Annotated[str, Field(max_length=64)] | None = None


class LLMVirtualKeyStatus(UsageStatus):
    secret_name: Annotated[str, Field(max_length=253)] | None = Field(None, description="Where the key is.")


class LLMTeamSpec(CRDModel):
    """Desired state of an LLMTeam: limits and budgets shared by all of its keys."""

    rate_limits: RateLimitsSpec | None = None
    budgets: list[BudgetSpec] = Field(default_factory=list, max_length=8)


class LLMTeamStatus(UsageStatus):
    """Observed state of an LLMTeam."""


class RedisSpec(CRDModel):
    """Shared counters: exact limits across replicas. Set ``url`` (an existing Redis) or let the
    Helm chart deploy one (its URL then goes here)."""

    url: Annotated[str, Field(max_length=1024, pattern=r"^(redis|rediss)://[^@]*$")] = Field(
        description="redis://host:6379/0, without a password."
    )
    password_secret_ref: SecretKeySelector | None = None
    on_failure: FailurePolicy = FailurePolicy.OPEN
    timeout_ms: int = Field(100, ge=1, le=60_000)


class ProviderBudgetSpec(CRDModel):
    provider: DNSLabel
    budgets: list[BudgetSpec] = Field(min_length=1, max_length=8)


class PriceSpec(CRDModel):
    """A price override: USD per million tokens for a provider and/or model glob."""

    provider: DNSLabel | None = None
    model: ModelName = "*"
    input_per_mtok: float = Field(ge=0, le=1e6)
    output_per_mtok: float = Field(ge=0, le=1e6)


class GovernanceSpec(CRDModel):
    """Virtual keys for this gateway: which ones, whether one is required, and where they count."""

    require_virtual_key: bool = False
    virtual_key_selector: LabelSelector | None = Field(None, description="Default: every LLMVirtualKey here.")
    redis: RedisSpec | None = Field(
        None, description="None: counters per replica (a Degraded condition says so)."
    )
    provider_budgets: list[ProviderBudgetSpec] = Field(default_factory=list, max_length=64)
    prices: list[PriceSpec] = Field(default_factory=list, max_length=256)
