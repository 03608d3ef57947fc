"""Building the uvicorn server the gateway runs on, for ``asbru serve`` and for the tests alike.

One place decides how the gateway is served: uvloop + httptools with ``AsbruHttpProtocol`` (the
connection limits), no access log and no proxy-header rewriting (the gateway reads no client
address: pure cost, ~1% CPU), no ``server: uvicorn`` header (it tells a scanner what runs here,
and uvicorn validates every header of every response with two regular expressions), a deep
accept backlog, and for several workers the supervisor that turns SIGHUP into a reload.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

from asbru_gateway.server.limits import ServerLimits
from asbru_gateway.server.protocol import AsbruHttpProtocol
from asbru_gateway.server.supervisor import ReloadingMultiprocess

APP_FACTORY = "asbru_gateway.app:app_from_environment"


def server_config(app: Any, *, limits: ServerLimits | None = None, **options: Any) -> uvicorn.Config:
    """A uvicorn config for ``app`` (an ASGI app, or the factory path with ``factory=True``)."""
    limits = limits or ServerLimits()
    settings: dict[str, Any] = {
        "loop": "uvloop" if sys.platform != "win32" else "asyncio",
        "http": AsbruHttpProtocol,
        "lifespan": "on",
        "access_log": False,
        "server_header": False,
        "proxy_headers": False,
        "log_config": None,
        "backlog": 4096,
        "timeout_keep_alive": max(1, round(limits.keep_alive_s)),
        **options,
    }
    config = uvicorn.Config(app, **settings)
    config.asbru_limits = limits  # type: ignore[attr-defined]  # read by AsbruHttpProtocol
    return config


def serve(config: uvicorn.Config) -> int:
    """Run until SIGTERM/SIGINT; several workers under the reloading supervisor. The exit code."""
    server = uvicorn.Server(config)
    if config.workers > 1:
        sock = config.bind_socket()
        ReloadingMultiprocess(config, sockets=[sock]).run()
        return 0
    server.run()
    return 0 if server.started else 3
