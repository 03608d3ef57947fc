"""``create_app`` -> the ASGI application. Its lifespan owns the gateway, its config source and pools.

Which config the gateway serves is decided here, in this order: an explicit ``GatewayConfig``
(tests, embedding), a Kubernetes source (``--kube-source NS/NAME``), a file (``--config``,
``ASBRU_CONFIG``), else the embedded default (echo + providers found in the environment).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from asbru_gateway.api.router import ApiRouter
from asbru_gateway.api.types import Receive, Scope, Send
from asbru_gateway.config.file_source import FileConfigSource
from asbru_gateway.config.model import GatewayConfig
from asbru_gateway.observability import metrics
from asbru_gateway.observability.logging import configure as configure_logging
from asbru_gateway.observability.logging import register_secret
from asbru_gateway.providers.discovery import default_config
from asbru_gateway.runtime import allocator, collector
from asbru_gateway.runtime.gateway import Gateway

if TYPE_CHECKING:
    from asbru_gateway.config.kube_source import KubeConfigSource
    from asbru_gateway.management.server import ManagementServer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppSettings:
    config_path: str | None = None
    """A YAML/JSON config file, reloaded on SIGHUP (and on change, with ``watch_config``)."""
    watch_config: bool = True
    """Watch ``config_path`` for changes. Off: reload on SIGHUP only (e.g. a config reloader)."""
    kube_source: str | None = None
    """``NAMESPACE/NAME`` of the ConfigMap and Secret to watch through the Kubernetes API."""
    shutdown_drain_s: float = 30.0
    """How long shutdown waits for in-flight upstream calls and streams."""
    admin_port: int | None = None
    """Serve the management API (FastAPI: usage, limits, effective config) on this port."""
    admin_host: str = "127.0.0.1"
    admin_token: str | None = field(default=None, repr=False)
    """The management API's bearer token (``ASBRU_ADMIN_TOKEN``, or a file: ``ASBRU_ADMIN_TOKEN_FILE``)."""
    settle_runtime: bool = False
    """Tune the garbage collector and the allocator once started (``runtime.collector``,
    ``runtime.allocator``): for a process of its own."""

    @classmethod
    def from_environment(cls) -> AppSettings:
        return cls(
            config_path=os.environ.get("ASBRU_CONFIG") or None,
            watch_config=os.environ.get("ASBRU_CONFIG_WATCH", "1") != "0",
            kube_source=os.environ.get("ASBRU_KUBE_SOURCE") or None,
            shutdown_drain_s=float(os.environ.get("ASBRU_SHUTDOWN_DRAIN_S", "30")),
            admin_port=int(os.environ["ASBRU_ADMIN_PORT"]) if os.environ.get("ASBRU_ADMIN_PORT") else None,
            admin_host=os.environ.get("ASBRU_ADMIN_HOST", "127.0.0.1"),
            admin_token=_admin_token(),
        )


class GatewayApp:
    """The ASGI callable: HTTP goes to the router, lifespan starts and stops the gateway."""

    def __init__(self, settings: AppSettings, config: GatewayConfig | None = None) -> None:
        self.settings = settings
        self.gateway = Gateway()
        self.router = ApiRouter(self.gateway)
        self._config = config
        self.file_source: FileConfigSource | None = None
        self.kube_source: KubeConfigSource | None = None
        self.management: ManagementServer | None = None
        self._pool_collector = metrics.PoolCollector(self.gateway.pool_stats)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.router(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as error:
                    log.exception("gateway failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        metrics.REGISTRY.register(self._pool_collector)
        settings = self.settings
        if self._config is not None:
            await self.gateway.apply(self._config)
        elif settings.kube_source:
            await self._start_kube_source(settings.kube_source)
        elif settings.config_path:
            self.file_source = FileConfigSource(
                settings.config_path,
                self.gateway.apply,
                watch=settings.watch_config,
                on_reject=self.gateway.reject,
            )
            await self.file_source.start()
        else:
            await self.gateway.apply(default_config(os.environ))
        if settings.admin_port is not None:
            await self._start_management(settings)
        if settings.settle_runtime:  # last: what start-up allocated (FastAPI too) is frozen
            collector.settle()
            allocator.settle()

    async def _start_management(self, settings: AppSettings) -> None:
        """The management API (FastAPI, imported only when asked for), on its own port."""
        from asbru_gateway.management.app import create_management_app
        from asbru_gateway.management.server import ManagementServer

        if not settings.admin_token:
            raise RuntimeError("the management API needs an admin token (ASBRU_ADMIN_TOKEN or _FILE)")
        register_secret(settings.admin_token)
        app = create_management_app(self.gateway, settings.admin_token)
        server = ManagementServer(app, settings.admin_host, settings.admin_port or 0)
        if await server.start():
            self.management = server

    async def _start_kube_source(self, ref_text: str) -> None:
        from asbru_gateway.config.kube_source import KubeConfigSource, KubeSourceRef

        async def apply(config: GatewayConfig, secrets: Mapping[str, str]) -> None:
            await self.gateway.apply(config, secrets)

        source = KubeConfigSource(KubeSourceRef.parse(ref_text), apply, on_error=self.gateway.reject)
        await source.start()
        self.kube_source = source

    async def shutdown(self) -> None:
        self.gateway.draining = True
        if self.management is not None:
            await self.management.stop()
        if self.file_source is not None:
            await self.file_source.stop()
        if self.kube_source is not None:
            await self.kube_source.stop()
        await self.router.mcp.stop()
        await self.gateway.close(self.settings.shutdown_drain_s)
        metrics.REGISTRY.unregister(self._pool_collector)


def _admin_token() -> str | None:
    path = os.environ.get("ASBRU_ADMIN_TOKEN_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip() or None
    return os.environ.get("ASBRU_ADMIN_TOKEN") or None


def create_app(settings: AppSettings | None = None, *, config: GatewayConfig | None = None) -> GatewayApp:
    return GatewayApp(settings or AppSettings(), config)


def app_from_environment() -> GatewayApp:
    """Factory for ``uvicorn --factory`` (and each of ``--workers N``): settings from ``ASBRU_*``."""
    configure_logging(os.environ.get("ASBRU_LOG_LEVEL", "info"))  # each worker process configures its own
    settings = replace(AppSettings.from_environment(), settle_runtime=True)
    return create_app(settings)
