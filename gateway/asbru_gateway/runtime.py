"""The live gateway: the current config snapshot, and the one way to change it (``apply``).

A ``Snapshot`` bundles everything built from one config revision (routes, provider runtimes,
plugin pipeline). Requests read ``Gateway.current`` once and keep that snapshot, so a request never
sees half of a reload. ``apply`` validates and builds the whole next snapshot first; only if that
succeeds does it swap the reference (one assignment, no lock on the request path). Providers whose
config and keys are unchanged keep their runtime; replaced ones drain in the background
(``drain_timeout_s``) and then close. A config that fails anywhere raises ``ConfigError`` and
the last good snapshot keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from asbru_gateway.config.model import GatewayConfig
from asbru_gateway.config.secrets import SecretResolver, served_revision
from asbru_gateway.errors import ConfigError
from asbru_gateway.observability import metrics
from asbru_gateway.observability.logging import register_secret
from asbru_gateway.plugins.builtin.registry import build_pipeline
from asbru_gateway.plugins.pipeline import Pipeline
from asbru_gateway.pool.pool_set import PoolSet, build_pool_set
from asbru_gateway.pool.provider_runtime import ProviderRuntime
from asbru_gateway.routing.dispatch import Dispatcher
from asbru_gateway.routing.plan import RouteTable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Snapshot:
    config: GatewayConfig
    revision: str
    routes: RouteTable
    pools: PoolSet
    pipeline: Pipeline


class Gateway:
    """Owns the current snapshot and the background drains of replaced provider runtimes."""

    def __init__(self) -> None:
        self.current: Snapshot | None = None
        self.dispatcher = Dispatcher(self._live_runtime)
        self.draining = False
        self._apply_lock = asyncio.Lock()
        self._drains: set[asyncio.Task[None]] = set()

    def _live_runtime(self, name: str) -> ProviderRuntime | None:
        snapshot = self.current
        return snapshot.pools.get(name) if snapshot is not None else None

    @property
    def ready(self) -> bool:
        return self.current is not None and not self.draining

    async def apply(self, config: GatewayConfig, secrets: Mapping[str, str] | None = None) -> str:
        """Validate, build and swap in ``config``; returns the served revision. Raises ``ConfigError``."""
        secrets = dict(secrets or {})
        revision = served_revision(config.revision, secrets)
        async with self._apply_lock:
            previous = self.current
            if previous is not None and previous.revision == revision:
                return revision
            try:
                snapshot = self._build(config, secrets, revision, previous)
            except ConfigError:
                metrics.CONFIG_RELOADS.labels("rejected").inc()
                raise
            self.current = snapshot
            metrics.CONFIG_RELOADS.labels("applied").inc()
            metrics.set_revision(revision)
            log.info(
                "config revision %s applied (%d providers, %d routes)",
                revision,
                len(config.providers),
                len(config.routes),
            )
        return revision

    def _build(
        self, config: GatewayConfig, secrets: dict[str, str], revision: str, previous: Snapshot | None
    ) -> Snapshot:
        resolver = SecretResolver(mapping=secrets)
        pools, retired = build_pool_set(config, resolver, previous.pools if previous else None)
        try:
            pipeline = build_pipeline(config)
            routes = RouteTable(config)
        except ConfigError:
            for runtime in pools:
                if previous is None or previous.pools.get(runtime.name) is not runtime:
                    self._schedule_drain(runtime, 0)
            raise
        for runtime in pools:
            for key in runtime.keys:
                register_secret(key.value.reveal())
        for runtime in retired:
            self._schedule_drain(runtime, config.server.drain_timeout_s)
        if previous is not None and previous.pipeline is not pipeline:
            self._schedule_pipeline_close(previous.pipeline, config.server.drain_timeout_s)
        return Snapshot(config, revision, routes, pools, pipeline)

    def _schedule_drain(self, runtime: ProviderRuntime, grace_s: float) -> None:
        task = runtime.drain_and_close(grace_s)
        self._track(asyncio.get_running_loop().create_task(task, name=f"drain-{runtime.name}"))

    def _schedule_pipeline_close(self, pipeline: Pipeline, grace_s: float) -> None:
        async def close_later() -> None:
            await asyncio.sleep(grace_s)  # in-flight requests of the old revision still use it
            await pipeline.aclose()

        self._track(asyncio.get_running_loop().create_task(close_later(), name="close-pipeline"))

    def _track(self, task: asyncio.Task[None]) -> None:
        self._drains.add(task)
        task.add_done_callback(self._drains.discard)

    def pool_stats(self) -> Iterator[metrics.PoolStats]:
        snapshot = self.current
        runtimes = list(snapshot.pools) if snapshot else []
        for runtime in runtimes:
            pool = runtime.pool
            yield metrics.PoolStats(
                runtime.name,
                pool.in_flight,
                pool.queued,
                pool.config.concurrency,
                pool.config.queue_size,
                pool.rejected,
            )

    async def close(self, grace_s: float) -> None:
        """Shutdown: every runtime drains (up to ``grace_s``) and closes; plugins close."""
        self.draining = True
        snapshot = self.current
        if snapshot is not None:
            for runtime in snapshot.pools:
                self._schedule_drain(runtime, grace_s)
            await snapshot.pipeline.aclose()
        for task in list(self._drains):
            if task.get_name() == "close-pipeline":
                task.cancel()
        await asyncio.gather(*self._drains, return_exceptions=True)
