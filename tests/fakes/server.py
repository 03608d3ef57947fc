"""Run an aiohttp.web app on 127.0.0.1 in a background thread: a real socket, its own event loop.

Fakes run in threads so that sync clients (the openai SDK's sync client) and async tests can both
use them, and so that a fake that hangs on purpose never blocks the test's own loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = None


@dataclass
class Recorder:
    """What a fake upstream received, for assertions (thread-safe append)."""

    requests: list[RecordedRequest] = field(default_factory=list)

    async def record(self, request: web.Request) -> RecordedRequest:
        body = await request.read()
        try:
            parsed = orjson.loads(body) if body else None
        except ValueError:
            parsed = None
        item = RecordedRequest(
            request.method, request.path, dict(request.query), dict(request.headers), body, parsed
        )
        self.requests.append(item)
        return item


@contextmanager
def serve_in_thread(app: web.Application, *, port: int = 0) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1; yields its base URL (``http://127.0.0.1:PORT``)."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict[str, Any] = {}

    async def start() -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
        await site.start()
        state["runner"] = runner
        state["port"] = runner.addresses[0][1]

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except BaseException as error:  # surface bind failures to the caller
            state["error"] = error
            started.set()
            return
        started.set()
        loop.run_forever()
        # Handlers still waiting on purpose (hang, slow-*) are cancelled, not left to be destroyed.
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(state["runner"].cleanup())
        loop.close()

    thread = threading.Thread(target=run, name="fake-upstream", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("fake upstream did not start within 10 s")
    if "error" in state:
        raise state["error"]
    try:
        yield f"http://127.0.0.1:{state['port']}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
