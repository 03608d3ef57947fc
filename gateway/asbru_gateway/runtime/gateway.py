"""The live gateway: the current config snapshot, and the one way to change it (``apply``).

A ``Snapshot`` bundles everything built from one config revision (routes, provider runtimes,
plugins, the dispatcher over them). Requests read ``Gateway.current`` once and keep that snapshot
from start to end, so a request never sees half of a reload. ``apply`` validates and builds the
whole next snapshot first, starts the plugin instances it creates, and only then swaps the reference
(one assignment, no lock on the request path).

What outlives a revision: providers whose config and keys are unchanged keep their runtime (pool,
connections); plugins whose name, type and settings are unchanged keep their instance. What a
revision replaces is retired once the requests that use it are done: provider runtimes drain
(``drain_timeout_s``) and close; plugin instances are stopped after every older snapshot is idle.
A config that fails anywhere raises ``ConfigError``, nothing serving is touched, and the last good
snapshot keeps serving; ``last_rejected`` says which revision was refused and why (``/readyz``
reports it, and the operator puts it in ``Programmed``), until a newer config is applied.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from asbru_gateway.config.model import GatewayConfig
from asbru_gateway.config.secrets import SecretResolver, file_refs, served_revision
from asbru_gateway.errors import ConfigError
from asbru_gateway.mcp.hub import McpConnections, McpHub, PendingConnections, wait_for_first
from asbru_gateway.observability import metrics
from asbru_gateway.observability.logging import register_secret
from asbru_gateway.plugins.base import Lifecycle
from asbru_gateway.plugins.builtin.registry import PluginSet, build_plugins, retired_plugins
from asbru_gateway.plugins.pipeline import Pipeline
from asbru_gateway.pool.pool_set import PoolSet, build_pool_set
from asbru_gateway.pool.provider_runtime import ProviderRuntime
from asbru_gateway.routing.dispatch import Dispatcher
from asbru_gateway.routing.plan import RouteTable

if TYPE_CHECKING:
    from asbru_gateway.mcp.connection import ServerConnection

log = logging.getLogger(__name__)


class Snapshot:
    """One config revision, ready to serve. ``active`` counts its requests in progress."""

    __slots__ = (
        "_idle",
        "active",
        "config",
        "dispatcher",
        "mcp",
        "pipeline",
        "plugins",
        "pools",
        "retired",
        "revision",
        "routes",
    )

    def __init__(
        self, config: GatewayConfig, revision: str, routes: RouteTable, pools: PoolSet, plugins: PluginSet
    ) -> None:
        self.config = config
        self.revision = revision
        self.routes = routes
        self.pools = pools
        self.plugins = plugins
        self.pipeline: Pipeline = plugins.pipeline
        self.dispatcher = Dispatcher(pools, plugins.pipeline)
        self.mcp: McpHub | None = None
        """This revision's MCP servers and tools; None when the config has no ``mcp`` section."""
        self.active = 0
        """Requests that started on this snapshot and have not finished (completion hooks included)."""
        self.retired = False
        self._idle: asyncio.Event | None = None

    def leave(self) -> None:
        """A request of this snapshot is over (the engine calls it; ``active`` was incremented)."""
        self.active -= 1
        if self.active == 0 and self._idle is not None:
            self._idle.set()

    async def wait_idle(self, timeout_s: float) -> bool:
        if self.active == 0:
            return True
        if self._idle is None or self._idle.is_set():
            self._idle = asyncio.Event()
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            return self.active == 0
        return True


@dataclass(frozen=True)
class Rejection:
    """A config revision this gateway refused, and why (one line, no secret values)."""

    revision: str | None
    reason: str


class Gateway:
    """Owns the current snapshot, the retired ones still serving, and background retirements."""

    def __init__(self) -> None:
        self.current: Snapshot | None = None
        self.draining = False
        self.last_rejected: Rejection | None = None
        """The last config refused since the current one was applied (None: none was)."""
        self._apply_lock = asyncio.Lock()
        self._retired: list[Snapshot] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.mcp = McpConnections()
        """MCP server connections: like provider runtimes, they outlive the revisions that use them."""

    @property
    def ready(self) -> bool:
        return self.current is not None and not self.draining

    async def apply(self, config: GatewayConfig, secrets: Mapping[str, str] | None = None) -> str:
        """Validate, build, start and swap in ``config``; returns the served revision.

        Raises ``ConfigError`` (and counts the rejection) if anything about it cannot be served.
        """
        secrets = dict(secrets or {})
        revision = served_revision(config.revision, secrets, file_refs(config.secret_refs()))
        async with self._apply_lock:
            previous = self.current
            if previous is not None and previous.revision == revision:
                return revision
            try:
                snapshot, retired_runtimes, started = self._build(config, secrets, revision, previous)
                pending = self._prepare_mcp(config, secrets, snapshot, previous)
                await self._start_plugins(snapshot, started)
            except ConfigError as error:
                metrics.CONFIG_RELOADS.labels("rejected").inc()
                self.last_rejected = Rejection(revision, error.message)
                raise
            await self._start_mcp(config, snapshot, pending)
            self.current = snapshot
            self.last_rejected = None
            metrics.CONFIG_RELOADS.labels("applied").inc()
            metrics.set_revision(revision)
            self._retire(previous, snapshot, retired_runtimes, pending.replaced)
            log.info(
                "config revision %s applied (%d providers, %d routes, %d plugins)",
                revision,
                len(config.providers),
                len(config.routes),
                len(snapshot.plugins.instances),
            )
        return revision

    def reject(self, reason: str, revision: str | None, *, counted: bool = False) -> None:
        """A config source refused a config (``counted``: in ``apply``, which counted it already).

        Every refusal is counted once in ``asbru_config_reloads_total{result="rejected"}``, whether
        it failed to parse in a source or failed to build here.
        """
        self.last_rejected = Rejection(revision, reason)
        if not counted:
            metrics.CONFIG_RELOADS.labels("rejected").inc()

    def _build(
        self, config: GatewayConfig, secrets: dict[str, str], revision: str, previous: Snapshot | None
    ) -> tuple[Snapshot, list[ProviderRuntime], list[object]]:
        resolver = SecretResolver(mapping=secrets)
        pools, retired = build_pool_set(config, resolver, previous.pools if previous else None)
        try:
            plugins, started = build_plugins(config, previous.plugins if previous else None, resolver)
            routes = RouteTable(config)
        except ConfigError:
            self._discard_new_runtimes(pools, previous)
            raise
        for runtime in pools:
            for key in runtime.keys:
                register_secret(key.value.reveal())
        return Snapshot(config, revision, routes, pools, plugins), retired, started

    def _prepare_mcp(
        self, config: GatewayConfig, secrets: dict[str, str], snapshot: Snapshot, previous: Snapshot | None
    ) -> PendingConnections:
        try:
            return self.mcp.prepare(config.mcp, SecretResolver(mapping=secrets))
        except ConfigError:
            self._discard_new_runtimes(snapshot.pools, previous)
            raise

    async def _start_mcp(
        self, config: GatewayConfig, snapshot: Snapshot, pending: PendingConnections
    ) -> None:
        """Start new MCP connections and give them a moment (their connect timeout) to list tools, so
        the revision serves with its tools; a server that is down by then is retried in the background."""
        created = {connection.name for connection in pending.created}
        servers = [server for server in (config.mcp.servers if config.mcp else ()) if server.name in created]
        connections = await self.mcp.commit(pending, wait_for_first(servers))
        if config.mcp is not None:
            snapshot.mcp = McpHub(config.mcp, connections, self.mcp, pending.token)

    async def _start_plugins(self, snapshot: Snapshot, created: list[object]) -> None:
        """Start the new plugin instances; if one fails, stop those started and reject the config."""
        started: list[Lifecycle] = []
        for instance in created:
            if not isinstance(instance, Lifecycle):
                continue
            try:
                await instance.start()
            except Exception as error:
                log.exception("plugin %s failed to start", getattr(instance, "name", instance))
                await _stop_all(started)
                self._discard_new_runtimes(snapshot.pools, self.current)
                name = getattr(instance, "name", type(instance).__name__)
                raise ConfigError(f"plugins[{name}]: failed to start: {error}") from None
            started.append(instance)

    def _discard_new_runtimes(self, pools: PoolSet, previous: Snapshot | None) -> None:
        for runtime in pools:
            if previous is None or previous.pools.get(runtime.name) is not runtime:
                self._spawn(runtime.drain_and_close(0), f"discard-{runtime.name}")

    def _retire(
        self,
        previous: Snapshot | None,
        current: Snapshot,
        runtimes: list[ProviderRuntime],
        connections: Sequence[ServerConnection] = (),
    ) -> None:
        """Replaced runtimes and plugins go once every older snapshot's requests are done.

        A request holds its snapshot from arrival to its last byte, possibly before it has taken a
        pool slot, so a replaced runtime may close only when no older snapshot is active (bounded
        by ``drain_timeout_s``), not merely when its pool is idle.
        """
        if previous is None:
            return
        previous.retired = True
        self._retired.append(previous)
        plugins = retired_plugins(previous.plugins, current.plugins)
        grace_s = current.config.server.drain_timeout_s
        self._spawn(self._retire_when_idle(runtimes, plugins, grace_s, connections), "retire")

    async def _retire_when_idle(
        self,
        runtimes: list[ProviderRuntime],
        plugins: list[object],
        grace_s: float,
        connections: Sequence[ServerConnection] = (),
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        for runtime in runtimes:
            runtime.pool.retire()
        olds = list(self._retired)
        await asyncio.gather(*(snapshot.wait_idle(grace_s) for snapshot in olds))
        self._retired = [snapshot for snapshot in self._retired if snapshot.active]
        remaining = max(0.0, deadline - loop.time())
        await asyncio.gather(*(runtime.drain_and_close(remaining) for runtime in runtimes))
        await _stop_all([plugin for plugin in plugins if isinstance(plugin, Lifecycle)])
        await self.mcp.close(connections)

    def _spawn(self, coroutine: object, name: str) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
        """Shutdown: wait (up to ``grace_s``) for requests, drain and close runtimes, stop plugins."""
        self.draining = True
        snapshot = self.current
        if snapshot is not None:
            await snapshot.wait_idle(grace_s)
            for runtime in snapshot.pools:
                self._spawn(runtime.drain_and_close(0), f"close-{runtime.name}")
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if snapshot is not None:
            instances = [instance for _, instance in snapshot.plugins.instances.values()]
            await _stop_all([plugin for plugin in instances if isinstance(plugin, Lifecycle)])
        await self.mcp.close()


async def _stop_all(plugins: Iterable[Lifecycle]) -> None:
    for plugin in plugins:
        try:
            await plugin.stop()
        except Exception:
            log.exception("plugin %s failed to stop", getattr(plugin, "name", plugin))
