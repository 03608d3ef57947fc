"""Counting windows: sliding ones (rate limits, rolling budgets) and calendar periods (budgets).

A sliding window of length W is kept as ``BUCKETS`` buckets of W/``BUCKETS`` each; a check counts
the current bucket and the ``BUCKETS`` before it. So what is counted always covers the whole last W
(a little more, never less): the limit holds in *every* window of length W, and a request may be
refused at most one bucket (1/60 of W) earlier than a perfect log would allow. A calendar period is
one counter per period (UTC day, ISO week, month), which refills when the period changes.

Times are milliseconds since the epoch from the caller's clock (tests use a fake one); every
replica agrees on bucket and period boundaries up to its clock skew.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

BUCKETS = 60
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
SLIDING_MS = {"minute": MINUTE_MS, "hour": HOUR_MS, "day": DAY_MS, "week": 7 * DAY_MS, "month": 30 * DAY_MS}
"""Sliding window lengths by name (a rolling month is 30 days)."""


@dataclass(frozen=True, slots=True)
class Window:
    """Where one counter's usage is counted: a sliding window or a calendar period."""

    name: str
    """``minute``, ``hour``, ``day``, ``week``, ``month``."""
    calendar: bool

    @property
    def seconds(self) -> int:
        """The nominal length (a calendar month says 30 days), for ``RateLimit-Policy``'s ``w``."""
        return SLIDING_MS[self.name] // 1000

    @property
    def bucket_ms(self) -> int:
        """Sliding: one bucket's length. Calendar: 0 (one counter per period)."""
        return 0 if self.calendar else SLIDING_MS[self.name] // BUCKETS

    @property
    def id(self) -> str:
        return f"{self.name}-c" if self.calendar else self.name

    def period(self, now_ms: int) -> tuple[str, int]:
        """Calendar: the current period's id and the ms left until it ends (cached per period)."""
        cached = _PERIODS.get(self.name)
        if cached is None or not cached[0] <= now_ms < cached[1]:
            cached = _PERIODS[self.name] = _calendar_period(self.name, now_ms)
        return cached[2], cached[1] - now_ms

    def reset_ms(self, now_ms: int) -> int:
        """When the usage counted now stops counting: a period's end, a bucket's exit from the window."""
        if self.calendar:
            return self.period(now_ms)[1]
        bucket = self.bucket_ms
        return (now_ms // bucket + BUCKETS + 1) * bucket - now_ms


_PERIODS: dict[str, tuple[int, int, str]] = {}
"""Window name -> (start ms, end ms, id) of the last calendar period computed: a request computes
no dates unless a period just changed."""


def _calendar_period(name: str, now_ms: int) -> tuple[int, int, str]:
    now = datetime.fromtimestamp(now_ms / 1000, UTC)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if name == "day":
        end = start + timedelta(days=1)
        period = start.strftime("%Y%m%d")
    elif name == "week":
        start -= timedelta(days=start.weekday())
        end = start + timedelta(days=7)
        period = start.strftime("%Y%m%d")
    elif name == "month":
        start = start.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        period = start.strftime("%Y%m")
    else:
        raise ValueError(f"no calendar period {name!r}")
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000), period


def sliding_retry_ms(buckets: dict[int, int], now_ms: int, bucket_ms: int, need: int) -> int:
    """How long until enough old buckets left the window that ``need`` more fits.

    ``need`` is how far over the limit the request would go; if that never frees up within the
    window (the request alone is larger than the limit), the whole window.
    """
    freed = 0
    for bucket in sorted(buckets):
        freed += buckets[bucket]
        if freed >= need:
            return max(1, (bucket + BUCKETS + 1) * bucket_ms - now_ms)
    return BUCKETS * bucket_ms
