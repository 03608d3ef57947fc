"""Timeouts on a request's waits without a timer per request: one watchman per event loop.

``asyncio.timeout`` costs ~34 k instructions per use (measured under callgrind: a timer handle,
its rescheduling and cancellation, and the context manager's frames), which is 5% of a streamed
request; aiohttp's own total timeout costs ~19 k per call. A non-streaming attempt's limit, a
stream's first-token timeout, a stream's idle limit and a request's deadline are seconds long and
need no millisecond precision, so a request registers *when* it must be done (a dict insert; a
stream stamps when each wait began), and one task per loop, running only while something is
registered, cancels the overdue ones every ``TICK_S``. The cancelled code asks ``unwatch`` (or
``unwatch_idle``) to tell this from a client leaving or a shutdown.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from asbru_gateway.core.loop_local import LoopLocal

TICK_S = 0.1


class Waiting(Protocol):
    waiting_since: float
    """``time.monotonic()`` when the current wait began; 0.0 while not waiting."""


class Deadlines:
    def __init__(self) -> None:
        self._due: dict[asyncio.Task[object], float] = {}
        self._idle: dict[asyncio.Task[object], tuple[Waiting, float]] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._watchman: asyncio.Task[None] | None = None

    def watch(self, task: asyncio.Task[object], seconds: float) -> None:
        """Cancel ``task`` if it is still watched ``seconds`` from now (give or take ``TICK_S``)."""
        self._due[task] = time.monotonic() + seconds
        self._start()

    def unwatch(self, task: asyncio.Task[object]) -> bool:
        """Stop watching; True if the deadline had already cancelled the task (the caller then
        handles the ``CancelledError``, or, if it finished first, calls ``absorb``)."""
        self._due.pop(task, None)
        return self._claim(task)

    def watch_idle(self, task: asyncio.Task[object], waiting: Waiting, seconds: float) -> None:
        """Cancel ``task`` once one wait of ``waiting`` lasts longer than ``seconds`` (a stream's
        idle limit), until ``unwatch_idle``.

        The waiting side stamps ``waiting_since`` around each wait: an attribute write per chunk,
        where a read timeout re-armed per chunk (aiohttp's ``sock_read``) costs ~4 k instructions.
        Time spent between waits (writing to a slow client) does not count.
        """
        self._idle[task] = (waiting, seconds)
        self._start()

    def unwatch_idle(self, task: asyncio.Task[object]) -> bool:
        """Stop watching idleness; True if the idle limit had cancelled the task."""
        self._idle.pop(task, None)
        return self._claim(task)

    def _start(self) -> None:
        if self._watchman is None:
            self._watchman = asyncio.get_running_loop().create_task(self._watch(), name="deadlines")

    def _claim(self, task: asyncio.Task[object]) -> bool:
        if task in self._expired:
            self._expired.discard(task)
            task.uncancel()
            return True
        return False

    async def absorb(self) -> None:
        """Take delivery of a deadline's cancellation that arrived after the work was done.

        ``Task.uncancel`` does not withdraw a cancellation that was requested but not yet
        delivered: without this, it would strike the caller's next ``await``.
        """
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # someone else cancelled us too

    async def _watch(self) -> None:
        try:
            while self._due or self._idle:
                await asyncio.sleep(TICK_S)
                now = time.monotonic()
                for task, due in tuple(self._due.items()):
                    if due <= now:
                        del self._due[task]
                        self._expire(task)
                for task, (waiting, seconds) in tuple(self._idle.items()):
                    since = waiting.waiting_since
                    if since and now - since > seconds:
                        del self._idle[task]
                        self._expire(task)
        finally:
            self._watchman = None

    def _expire(self, task: asyncio.Task[object]) -> None:
        self._expired.add(task)
        task.cancel()


_BY_LOOP = LoopLocal(Deadlines)


def deadlines() -> Deadlines:
    """The running loop's ``Deadlines``."""
    return _BY_LOOP.get()
