"""The management API's response models (its OpenAPI document is generated from them)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class LimitState(BaseModel):
    """One limit or budget and where it stands now."""

    name: str = Field(
        description="As in the RateLimit-Policy header: key-requests-minute, team-usd-month-c, ..."
    )
    kind: str = Field(description="rate_limit or budget")
    metric: str = Field(description="requests, tokens or usd")
    window: str = Field(description="minute, hour, day, week or month")
    calendar: bool = Field(description="True: a calendar period (UTC); False: a sliding window")
    quota: float
    used: float
    remaining: float
    reset_seconds: int = Field(description="Until the current usage stops counting (calendar: period end)")


class Totals(BaseModel):
    requests: int = 0
    tokens: int = 0
    usd: float = 0.0


class Usage(BaseModel):
    """Actual usage per calendar period (UTC): today and this month."""

    day: Totals
    month: Totals


class KeyView(BaseModel):
    name: str
    team: str | None
    disabled: bool
    expired: bool
    expires_at: datetime | None
    limits: list[LimitState]
    usage: Usage | None = Field(None, description="Absent when usage accounting is off")


class TeamView(BaseModel):
    name: str
    keys: list[str]
    limits: list[LimitState]
    usage: Usage | None = None


class ProviderView(BaseModel):
    name: str
    type: str
    budgets: list[LimitState]
    usage: Usage | None = None


class ModelView(BaseModel):
    provider: str
    model: str = Field(description="A configured model name ('other' for the rest)")
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    price_source: str = Field(description="override, table (the shipped prices) or unknown (costs 0)")
    usage: Usage | None = None


class StoreView(BaseModel):
    kind: str = Field(description="redis, or memory (counts of this process only)")
    shared: bool = Field(description="True when every replica and worker sees the same counts")
    up: bool
    pid: int = Field(description="The process that answered (with memory counters, its counts only)")
