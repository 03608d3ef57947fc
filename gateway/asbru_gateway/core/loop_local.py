"""One object per event loop, made on first use and gone with its loop.

For per-loop machinery (``core.bulk``'s lane, ``routing.deadlines``' watchman): the gateway runs
one loop, but tests run many, one after another, in one process. The objects must not hold their
loop (they ask for the running one): a value that references its weak key keeps that key, and
every closed loop with it, alive for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar
from weakref import WeakKeyDictionary

T = TypeVar("T")


class LoopLocal(Generic[T]):
    __slots__ = ("_by_loop", "_make")

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._by_loop: WeakKeyDictionary[asyncio.AbstractEventLoop, T] = WeakKeyDictionary()

    def get(self) -> T:
        """The running loop's object."""
        loop = asyncio.get_running_loop()
        found = self._by_loop.get(loop)
        if found is None:
            found = self._by_loop[loop] = self._make()
        return found

    def __len__(self) -> int:
        return len(self._by_loop)
