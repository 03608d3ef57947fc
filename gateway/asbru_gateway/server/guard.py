"""One watchman per process for every connection's deadlines, instead of a timer per request.

A timer armed and cancelled per request costs a few thousand instructions on the hot path; a
connection only needs to note *when* it entered its current phase (an attribute write). The guard
wakes once a second while connections are open, and drops those past their phase's deadline.
With no connection open it does not run at all: an idle gateway has no timer waking it up.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Protocol


class Guarded(Protocol):
    def check_deadline(self, tick: int) -> None:
        """Drop the connection if it has been in its phase too long (called once per tick: ~1 s)."""
        ...


class ConnectionGuard:
    INTERVAL_S = 1.0

    def __init__(self) -> None:
        self._connections: set[Guarded] = set()
        self._task: asyncio.Task[None] | None = None
        self.tick = 0
        """Seconds, roughly, since the guard first ran: what connections stamp their phases with
        (an attribute read, where ``loop.time()`` would be a call per phase change)."""

    def add(self, connection: Guarded, loop: asyncio.AbstractEventLoop) -> None:
        self._connections.add(connection)
        if self._task is None:
            self._task = loop.create_task(self._watch(loop), name="connection-guard")

    def discard(self, connection: Guarded) -> None:
        self._connections.discard(connection)

    async def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while self._connections:
                await asyncio.sleep(self.INTERVAL_S)
                self.tick += 1
                for connection in tuple(self._connections):
                    connection.check_deadline(self.tick)
        finally:
            self._task = None


_GUARDS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ConnectionGuard] = weakref.WeakKeyDictionary()


def guard_for(loop: asyncio.AbstractEventLoop) -> ConnectionGuard:
    """The guard of ``loop`` (one per event loop: uvicorn runs one loop per worker process)."""
    guard = _GUARDS.get(loop)
    if guard is None:
        guard = _GUARDS[loop] = ConnectionGuard()
    return guard
