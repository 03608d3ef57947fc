"""Serving the management API on its own port, inside the gateway's event loop.

A second uvicorn server, started and stopped by the gateway app's lifespan; it installs no signal
handlers (the gateway's server owns SIGTERM/SIGHUP). With ``--workers N`` every worker tries to
bind the port and the first one wins; the others skip it (logged). That is enough: with Redis
every worker sees the same counts, so whichever answers answers for all; without Redis, counts are
per process anyway (``GET /v1/store`` says ``shared: false`` and which pid answered).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Generator

import uvicorn
from fastapi import FastAPI

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the gateway's own server handles signals


class ManagementServer:
    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self._app = app
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> bool:
        """Bind and serve; False (and nothing started) when another worker holds the port."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as error:
            sock.close()
            if error.errno == errno.EADDRINUSE:
                log.info("management API port %d is served by another worker", self.port)
                return False
            raise
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self._app, log_config=None, access_log=False, lifespan="off")
        self._server = _Server(config)
        self._task = asyncio.get_running_loop().create_task(
            self._server.serve(sockets=[sock]), name="management"
        )
        ready = asyncio.ensure_future(self._server.ready.wait())
        await asyncio.wait([ready, self._task], return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            ready.cancel()
            self._task.result()  # raises why it could not start
        log.info("management API on http://%s:%d (OpenAPI at /openapi.json)", self.host, self.port)
        return True

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
