"""A provider's isolation boundary: bounded concurrency plus a bounded FIFO queue.

Every upstream call holds one slot for its whole life (a stream holds it until the last chunk),
so a provider that hangs fills *its own* slots and queue and then answers 503 (``reject``) or
makes callers wait up to ``queue_timeout_s`` (``wait``); no other provider's capacity is touched.

The fast path (a free slot, nobody queued) never awaits, creates no task and no future: one
comparison and one increment. A released slot is handed directly to the oldest waiter, so the
queue is fair and a burst of new arrivals cannot overtake it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from asbru_gateway.config.model import Overflow, PoolConfig
from asbru_gateway.errors import PoolFullError

POOL_FULL_RETRY_AFTER_S = 1.0


class BoundedPool:
    __slots__ = ("_idle", "_waiters", "config", "in_flight", "name", "rejected", "retired")

    def __init__(self, name: str, config: PoolConfig) -> None:
        self.name = name
        self.config = config
        self.in_flight = 0
        self.rejected = 0
        self.retired = False
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._idle: asyncio.Event | None = None

    @property
    def queued(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> None:
        """Take a slot, queue for one, or raise ``PoolFullError`` (503 + Retry-After)."""
        if self.in_flight < self.config.concurrency and not self._waiters:
            self.in_flight += 1
            return
        if self.config.overflow is Overflow.REJECT or len(self._waiters) >= self.config.queue_size:
            self.rejected += 1
            raise PoolFullError(
                f"provider {self.name!r} is at capacity; retry later",
                retry_after=POOL_FULL_RETRY_AFTER_S,
            )
        await self._wait_for_slot()

    async def _wait_for_slot(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that races
            # with the slot being handed over, leaving a departed client holding the slot.
            async with asyncio.timeout(self.config.queue_timeout_s):
                await waiter
        except TimeoutError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                return  # the slot arrived together with the deadline: keep it
            self.rejected += 1
            raise PoolFullError(
                f"provider {self.name!r}: no free slot within {self.config.queue_timeout_s:g} s",
                retry_after=POOL_FULL_RETRY_AFTER_S,
            ) from None
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release()  # the slot arrived as we were cancelled: pass it on
            raise
        finally:
            if not waiter.done():
                waiter.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def release(self) -> None:
        """Give a slot back: to the oldest live waiter if any, else to the pool."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.in_flight -= 1
        if self.in_flight == 0 and self._idle is not None:
            self._idle.set()

    def retire(self) -> None:
        """Mark the pool as replaced by a reload. Requests of the revision that owns it (in flight,
        queued, or arriving with that revision's snapshot) are still served: a reload drops nothing;
        ``wait_idle`` then tells when the last of them is done."""
        self.retired = True

    async def wait_idle(self, grace_s: float) -> bool:
        """Wait until nothing is in flight; False if ``grace_s`` passed first."""
        if self.in_flight == 0:
            return True
        if self._idle is None or self._idle.is_set():  # reuse a pending one: every waiter is woken
            self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), grace_s)
        except TimeoutError:
            return False
        return True
