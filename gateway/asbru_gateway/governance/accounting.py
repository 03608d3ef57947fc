"""Usage accounting: requests, tokens and cost per key, team, provider and model, per calendar day
and month, in the same store as the limits (so every replica reports the same numbers).

Written once per request, with the settlement (the same store call, after the response); read by
the management API and the operator's status columns. Separate counters from the limits
(``usage/...``), so a budget's reservation and the accounting of actual usage never mix.
"""

from __future__ import annotations

from asbru_gateway.governance.limits import MICRO, REQUESTS, TOKENS, USD, Limit
from asbru_gateway.governance.windows import Window

WINDOWS = (Window("day", calendar=True), Window("month", calendar=True))
METRICS = (REQUESTS, TOKENS, USD)
UNLIMITED = 1 << 62


def usage_limits(scope: str) -> tuple[Limit, ...]:
    """The accounting counters of one scope (``key/NAME``, ``team/NAME``, ``provider/NAME``,
    ``model/PROVIDER/MODEL``): every metric, every window."""
    return tuple(
        Limit(f"usage/{scope}", metric, window, UNLIMITED, budget=False)
        for window in WINDOWS
        for metric in METRICS
    )


def usage_amounts(tokens: int, micro_usd: int) -> list[int]:
    """What one request adds to a scope's ``usage_limits``, in their order."""
    return [1, tokens, micro_usd] * len(WINDOWS)


def summary(limits: tuple[Limit, ...], used: list[int]) -> dict[str, dict[str, float]]:
    """``{"day": {"requests": 3, "tokens": 120, "usd": 0.0012}, "month": {...}}``."""
    out: dict[str, dict[str, float]] = {}
    for limit, count in zip(limits, used, strict=True):
        value: float = count / MICRO if limit.metric == USD else count
        out.setdefault(limit.window.name, {})[limit.metric] = value
    return out
