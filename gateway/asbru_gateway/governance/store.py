"""The counter store contract, and the exact in-process store used when no Redis is configured.

Two operations matter, each one atomic over all the limits of a request:

- ``reserve``: if every limit has room for its amount, count the amounts and say so; otherwise count
  nothing and say which limit is full and when it will have room (``Decision``).
- ``settle``: after the answer, add the difference between the actual and the reserved amounts
  (refunds are negative), in the same bucket or period the reservation went to; and count the
  actual usage on the accounting counters (``accounting``).

So usage can exceed a limit only by what requests that were admitted consumed beyond what they
reserved; a sequential client never sees a budget exceeded by more than its last request's excess.
``usage`` reads the counts without changing them (management API, status columns).

The in-process store counts exactly within one process: with several replicas or ``--workers``
each process counts alone, which the operator and the logs say.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from asbru_gateway.governance.accounting import WINDOWS, totals
from asbru_gateway.governance.limits import Limit
from asbru_gateway.governance.windows import BUCKETS, sliding_retry_ms


@dataclass(slots=True)
class Decision:
    allowed: bool
    used: list[int]
    """Per limit: the count including this request's amounts (allowed), or without them (refused)."""
    failed: int = -1
    """The index of the first limit without room (refused), else -1."""
    retry_ms: int = 0


@dataclass(slots=True)
class Settlement:
    """What a finished request writes, in one store call: corrections of its reservations (actual
    minus reserved, in the bucket or period reserved in) and its usage on the accounting counters."""

    corrections: list[tuple[tuple[Limit, ...], list[int], int]]
    """(limits, deltas, reserved at ms) per reservation; only existing counters are corrected."""
    scopes: tuple[str, ...] = ()
    """Accounting scopes the request counts in (``key/NAME``, ``team/NAME``, ...)."""
    tokens: int = 0
    micro_usd: int = 0
    at_ms: int = 0
    """When the usage is counted (its calendar periods)."""


class StoreUnavailableError(Exception):
    """The shared store could not answer (down, slow): the failure policy decides."""


class CounterStore(Protocol):
    fingerprint: str
    """Equal fingerprints: the same store (a new config revision keeps the connection and counts)."""
    shared: bool
    """True when every replica and worker sees the same counts."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def reserve(self, limits: tuple[Limit, ...], amounts: list[int], now_ms: int) -> Decision: ...

    async def settle(self, settlement: Settlement) -> None: ...

    async def usage(self, limits: tuple[Limit, ...], now_ms: int) -> list[int]: ...

    async def totals(self, scope: str, now_ms: int) -> dict[str, dict[str, float]]:
        """The accounting counters of ``scope`` for the current day and month."""
        ...


def slot(limit: Limit, now_ms: int) -> str:
    """Where ``now_ms``'s usage goes: the calendar period id, or the sliding bucket number."""
    window = limit.window
    if window.calendar:
        return window.period(now_ms)[0]
    return str(now_ms // window.bucket_ms)


class MemoryStore:
    """Exact counters in this process (no I/O: the coroutines never suspend)."""

    fingerprint = "memory"
    shared = False

    def __init__(self) -> None:
        self._sliding: dict[str, dict[int, int]] = {}
        self._calendar: dict[str, tuple[str, int]] = {}
        self._usage: dict[tuple[str, str], tuple[str, list[int]]] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def reserve(self, limits: tuple[Limit, ...], amounts: list[int], now_ms: int) -> Decision:
        used = [self._used(limit, now_ms) for limit in limits]
        for index, limit in enumerate(limits):
            if used[index] + amounts[index] > limit.quota:
                return Decision(
                    False, used, index, self._retry_ms(limit, now_ms, used[index], amounts[index])
                )
        for index, limit in enumerate(limits):
            self._add(limit, amounts[index], now_ms, create=True)
            used[index] += amounts[index]
        return Decision(True, used)

    async def settle(self, settlement: Settlement) -> None:
        for limits, deltas, reserved_ms in settlement.corrections:
            for limit, delta in zip(limits, deltas, strict=True):
                if delta:
                    self._add(limit, delta, reserved_ms, create=False)
        for scope in settlement.scopes:
            for window in WINDOWS:
                period = window.period(settlement.at_ms)[0]
                current, counts = self._usage.get((scope, window.name), ("", [0, 0, 0]))
                if current != period:
                    counts = [0, 0, 0]
                counts = [counts[0] + 1, counts[1] + settlement.tokens, counts[2] + settlement.micro_usd]
                self._usage[(scope, window.name)] = (period, counts)

    async def usage(self, limits: tuple[Limit, ...], now_ms: int) -> list[int]:
        return [self._used(limit, now_ms) for limit in limits]

    async def totals(self, scope: str, now_ms: int) -> dict[str, dict[str, float]]:
        counts = {}
        for window in WINDOWS:
            period, values = self._usage.get((scope, window.name), ("", [0, 0, 0]))
            if period == window.period(now_ms)[0]:
                counts[window.name] = values
        return totals(counts)

    def _used(self, limit: Limit, now_ms: int) -> int:
        counter = limit.counter_id
        if limit.window.calendar:
            period, value = self._calendar.get(counter, ("", 0))
            return value if period == slot(limit, now_ms) else 0
        buckets = self._sliding.get(counter)
        if not buckets:
            return 0
        oldest = now_ms // limit.window.bucket_ms - BUCKETS
        for stale in [bucket for bucket in buckets if bucket < oldest]:
            del buckets[stale]
        return sum(buckets.values())

    def _add(self, limit: Limit, amount: int, at_ms: int, *, create: bool) -> None:
        counter = limit.counter_id
        if limit.window.calendar:
            period = slot(limit, at_ms)
            current, value = self._calendar.get(counter, ("", 0))
            if current != period:
                if not create:
                    return  # the period of the reservation is over: nothing left to correct
                value = 0
            self._calendar[counter] = (period, max(0, value + amount))
            return
        bucket = at_ms // limit.window.bucket_ms
        buckets = self._sliding.setdefault(counter, {}) if create else self._sliding.get(counter)
        if buckets is not None and (create or bucket in buckets):
            buckets[bucket] = max(0, buckets.get(bucket, 0) + amount)

    def _retry_ms(self, limit: Limit, now_ms: int, used: int, amount: int) -> int:
        if limit.window.calendar:
            return limit.window.period(now_ms)[1]
        need = used + amount - limit.quota
        buckets = self._sliding.get(limit.counter_id, {})
        return sliding_retry_ms(buckets, now_ms, limit.window.bucket_ms, need)
