"""Limits compiled from the config: one ``Limit`` per (scope, metric, window), built once per revision.

A request's check is the tuple of limits of its key, its key's team and (per attempt) its provider.
Each limit names a counter (``counter_id``) that does not depend on the quota, so raising a limit
keeps the usage counted so far, and two keys never share a counter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from asbru_gateway.config.governance import Budget, RateLimits, Reset
from asbru_gateway.governance.windows import Window

REQUESTS = "requests"
TOKENS = "tokens"
USD = "usd"
MICRO = 1_000_000
"""Counters hold USD as whole micro-dollars: exact integer arithmetic everywhere (Redis included)."""


@dataclass(frozen=True, slots=True)
class Limit:
    scope: str
    """``key/NAME``, ``team/NAME`` or ``provider/NAME``."""
    metric: str
    """``requests``, ``tokens`` or ``usd`` (micro-dollars in counters)."""
    window: Window
    quota: int
    budget: bool
    """True for a budget (429 ``budget_exceeded``), False for a rate limit (429 ``rate_limited``)."""

    counter_id: str = field(init=False, compare=False)
    """The counter's name (``key/NAME:tokens:day-c``), independent of the quota."""
    policy: str = field(init=False, compare=False)
    """The name in ``RateLimit-Policy``/``RateLimit``: ``key-requests-minute``, ``team-usd-month-c``."""

    def __post_init__(self) -> None:
        window_id = self.window.id
        object.__setattr__(self, "counter_id", f"{self.scope}:{self.metric}:{window_id}")
        object.__setattr__(self, "policy", f"{self.scope.partition('/')[0]}-{self.metric}-{window_id}")

    def describe(self) -> str:
        """For messages: ``10 requests per minute``, ``200 tokens per day``, ``$5.00 per month``."""
        every = "per" if self.window.calendar or self.budget is False else "per rolling"
        amount = f"${self.quota / MICRO:,.2f}" if self.metric == USD else f"{self.quota} {self.metric}"
        return f"{amount} {every} {self.window.name}"


def rate_limits(scope: str, limits: RateLimits) -> list[Limit]:
    found = []
    for metric in (REQUESTS, TOKENS):
        for window in ("minute", "hour", "day"):
            quota = getattr(limits, f"{metric}_per_{window}")
            if quota is not None:
                found.append(Limit(scope, metric, Window(window, calendar=False), quota, budget=False))
    return found


def budgets(scope: str, entries: Iterable[Budget]) -> list[Limit]:
    found = []
    for entry in entries:
        window = Window(entry.period.value, calendar=entry.reset is Reset.CALENDAR)
        if entry.usd is not None:
            found.append(Limit(scope, USD, window, math.floor(entry.usd * MICRO), budget=True))
        if entry.tokens is not None:
            found.append(Limit(scope, TOKENS, window, entry.tokens, budget=True))
    return found


def amounts(limits: tuple[Limit, ...], tokens: int, micro_usd: int) -> list[int]:
    """What a request counts against each limit: 1 request, its tokens, its cost."""
    return [1 if lim.metric == REQUESTS else tokens if lim.metric == TOKENS else micro_usd for lim in limits]


def needs_usage(limits: tuple[Limit, ...]) -> bool:
    """Whether any limit counts tokens or cost (then the request is estimated and settled)."""
    return any(lim.metric != REQUESTS for lim in limits)
