"""Usage accounting: requests, tokens and cost per key, team, provider and model, per calendar day
and month, in the same store as the limits (so every replica reports the same numbers).

One counter per (scope, period) with three fields (requests, tokens, micro-dollars), written with
the settlement after each response (the same store call); read by the management API and, through
it, the operator's status columns. Kept apart from the limits' counters (``usage/...``), so a
budget's reservation and the accounting of actual usage never mix.
"""

from __future__ import annotations

from asbru_gateway.governance.limits import MICRO
from asbru_gateway.governance.windows import Window

WINDOWS = (Window("day", calendar=True), Window("month", calendar=True))
FIELDS = ("requests", "tokens", "usd")
SLACK_MS = 60_000


def usage_key(scope: str, window: Window, at_ms: int) -> str:
    """The counter of ``scope`` (``key/NAME``, ``team/NAME``, ``provider/NAME``,
    ``model/PROVIDER/MODEL``) for the period of ``window`` that ``at_ms`` falls in."""
    return f"usage/{scope}:{window.name}:{window.period(at_ms)[0]}"


def totals(counts: dict[str, list[int]]) -> dict[str, dict[str, float]]:
    """``{"day": {"requests": 3, "tokens": 120, "usd": 0.0012}, "month": {...}}`` from raw counts
    (window name -> [requests, tokens, micro-dollars])."""
    out: dict[str, dict[str, float]] = {}
    for window in WINDOWS:
        requests, tokens, micro = counts.get(window.name) or [0, 0, 0]
        out[window.name] = {"requests": requests, "tokens": tokens, "usd": micro / MICRO}
    return out
