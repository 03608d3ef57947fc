"""Run the real gateway (uvicorn, uvloop, httptools) on 127.0.0.1 in a background thread.

Tests talk to it over a real socket with real clients. ``apply`` reaches into the running app's
event loop, which is how the Kubernetes source and file watcher apply configs too.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from asbru_gateway.app import AppSettings, GatewayApp, create_app
from asbru_gateway.config.errors import ConfigError
from asbru_gateway.config.loader import parse_config
from asbru_gateway.config.model import GatewayConfig
from asbru_gateway.runtime.gateway import Gateway
from asbru_gateway.server.limits import ServerLimits
from asbru_gateway.server.run import server_config


@dataclass
class RunningGateway:
    url: str
    app: GatewayApp
    loop: asyncio.AbstractEventLoop

    @property
    def base_url(self) -> str:
        """For OpenAI SDK clients: ``http://127.0.0.1:PORT/v1``."""
        return self.url + "/v1"

    def apply(self, config: GatewayConfig | dict[str, Any], secrets: Mapping[str, str] | None = None) -> str:
        """Apply a config in the gateway's loop; raises ``ConfigError`` like the real sources see it
        (and, like the Kubernetes source, reports one that does not parse to the gateway)."""
        if isinstance(config, dict):
            try:
                config = parse_config(config)
            except ConfigError as error:
                self.call(_reject(self.app.gateway, error.message))
                raise
        future = asyncio.run_coroutine_threadsafe(self.app.gateway.apply(config, secrets), self.loop)
        return future.result(timeout=30)

    def call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)


@contextmanager
def run_gateway(
    config: GatewayConfig | dict[str, Any] | None = None,
    *,
    settings: AppSettings | None = None,
    limits: ServerLimits | None = None,
) -> Iterator[RunningGateway]:
    if isinstance(config, dict):
        config = parse_config(config)
    app = create_app(settings or AppSettings(shutdown_drain_s=2), config=config)
    server = uvicorn.Server(
        server_config(app, limits=limits, host="127.0.0.1", port=0, timeout_graceful_shutdown=5)
    )
    loops: list[asyncio.AbstractEventLoop] = []
    original_startup = server.startup

    async def startup(sockets: Any = None) -> None:
        loops.append(asyncio.get_running_loop())
        await original_startup(sockets)

    server.startup = startup  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, name="gateway", daemon=True)
    thread.start()
    for _ in range(1000):  # wait on the condition, up to 10 s
        if server.started or not thread.is_alive():
            break
        thread.join(0.01)
    if not server.started:
        server.should_exit = True
        thread.join(10)
        raise RuntimeError("gateway did not start (see log)")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield RunningGateway(f"http://127.0.0.1:{port}", app, loops[0])
    finally:
        server.should_exit = True
        thread.join(15)


async def _reject(gateway: Gateway, reason: str) -> None:
    gateway.reject(reason, None)


async def served_model(client: httpx.AsyncClient, route: str = "chat") -> str:
    """Which upstream model the gateway behind ``client`` answers ``route`` with (echo reports it)."""
    response = await client.post(
        "/v1/chat/completions", json={"model": route, "messages": [{"role": "user", "content": "x"}]}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["model"])
