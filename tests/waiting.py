"""Waiting on a condition that lives in another process or thread, with a deadline.

Where a test can await an event it does; where the state is only observable from outside (an
HTTP endpoint, a subprocess), it polls here: one place, always bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout_s: float, interval_s: float = 0.02
) -> None:
    """Await ``check()`` until it returns True; ``TimeoutError`` after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while True:
            if await check():
                return
            await asyncio.sleep(interval_s)


def wait_until(check: Callable[[], bool], what: str, *, timeout_s: float = 10.0) -> None:
    """Block until ``check()`` is true (polled from a sync test); fails naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for: {what}")
        time.sleep(0.01)
