"""``McpHub``: one config revision's MCP servers over the gateway's live connections.

What a request costs here is what the issue's budget is about (0.2 ms of CPU for 20 injected
tools), so the hub does per request only: a generation check, one dict lookup of the caller's
precomputed offer, and the narrowing headers if the request sent any. The offer for a caller (its
tools as core ``Tool`` dicts, by exposed name, and which are auto-executed) is computed once per
caller and per generation: the generation moves whenever a connection's tools or state change.

``McpConnections`` is the part that outlives revisions (the gateway owns it): a server whose
connection fields and resolved secrets are unchanged keeps its connection, session and subprocess;
a changed or removed one is closed once the revisions that used it are done.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from asbru_gateway.config.mcp import McpConfig, McpServerConfig
from asbru_gateway.config.secrets import SecretResolver, SecretValue
from asbru_gateway.core.identity import Identity
from asbru_gateway.core.request import CHAT, LLMRequest
from asbru_gateway.core.schema import Tool
from asbru_gateway.mcp.access import IDENTITY_ATTRIBUTE, Narrowing, allowed
from asbru_gateway.mcp.names import matches
from asbru_gateway.mcp.tools import McpTool, ToolOutcome
from asbru_gateway.observability import metrics
from asbru_gateway.observability.logging import register_secret

if TYPE_CHECKING:
    from asbru_gateway.mcp.connection import ServerConnection

log = logging.getLogger(__name__)

TEXT_ONLY_DIALECTS = frozenset({"openai.completions"})
"""Dialects whose answers are text only (legacy completions): a tool call has nowhere to go there,
so such a request is offered only the tools the gateway runs itself (agent mode), and only when it
is translated anyway (``runtime.tool_offer``)."""
_CACHE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class Offer:
    """The MCP tools one request gets."""

    tools: list[Tool]
    """As core tools, ready for ``LLMRequest.add_tools``."""
    by_name: dict[str, McpTool]
    auto: frozenset[str] = frozenset()
    """Exposed names of the tools the gateway executes itself (agent mode)."""

    def narrowed(self, narrowing: Narrowing, servers: Iterable[str]) -> Offer:
        names = tuple(servers)
        return self._keep(
            {name: tool for name, tool in self.by_name.items() if narrowing.admits(tool, names)}
        )

    def auto_only(self) -> Offer:
        """Only the tools the gateway runs itself."""
        return self._keep({name: tool for name, tool in self.by_name.items() if name in self.auto})

    def _keep(self, kept: dict[str, McpTool]) -> Offer:
        return Offer([tool.core for tool in kept.values()], kept, self.auto & kept.keys())


EMPTY = Offer([], {})


class McpHub:
    __slots__ = ("_cache", "_connections", "_generation", "_registry", "config", "servers", "token")

    def __init__(
        self,
        config: McpConfig,
        connections: Mapping[str, ServerConnection],
        registry: McpConnections,
        token: SecretValue | None = None,
    ) -> None:
        self.config = config
        self.token = token
        """``serve.token``, resolved: what MCP endpoint callers present when no plugin authenticates."""
        self.servers = {server.name: server for server in config.servers}
        self._connections = connections
        self._registry = registry
        self._generation = -1
        self._cache: dict[object, Offer] = {}

    # --- what a request gets -----------------------------------------------------------------------

    def offer(self, request: LLMRequest) -> Offer | None:
        """The tools to add to ``request`` (None: none). The engine's one call per chat request."""
        if request.operation != CHAT:
            return None
        offer = self.offer_for(request.identity, request.headers)
        if request.dialect in TEXT_ONLY_DIALECTS and offer.tools:
            offer = offer.auto_only()
        return offer if offer.tools else None

    def offer_for(self, identity: Identity | None, headers: Mapping[str, str] | None = None) -> Offer:
        """The caller's tools, narrowed by the request's headers (for execute and ``/mcp`` too)."""
        generation = self._registry.generation
        if generation != self._generation:
            self._cache.clear()
            self._generation = generation
        key = _caller_key(identity)
        offer = self._cache.get(key)
        if offer is None:
            offer = self._build(identity)
            if len(self._cache) < _CACHE_LIMIT:
                self._cache[key] = offer
        if headers is not None and offer.tools:
            narrowing = Narrowing.from_headers(headers)
            if narrowing is not None:
                return offer.narrowed(narrowing, self.servers)
        return offer

    def _build(self, identity: Identity | None) -> Offer:
        by_name: dict[str, McpTool] = {}
        auto: set[str] = set()
        for name, server in self.servers.items():
            connection = self._connections.get(name)
            if connection is None or not connection.status.connected:
                continue
            for tool in allowed(server, connection.tools, identity):
                by_name[tool.exposed] = tool
                if server.auto_execute and matches(server.auto_execute, tool.name):
                    auto.add(tool.exposed)
        return Offer([tool.core for tool in by_name.values()], by_name, frozenset(auto)) if by_name else EMPTY

    # --- running a tool ---------------------------------------------------------------------------

    async def call(self, tool: McpTool, arguments: dict[str, Any], *, request_id: str) -> ToolOutcome:
        """Run one call of ``tool`` (already allowed for the caller); metrics and one log line."""
        server = self.servers.get(tool.server)
        connection = self._connections.get(tool.server)
        started = time.perf_counter()
        if server is None or connection is None:
            outcome = ToolOutcome.failed(
                tool.server, tool.name, "unavailable", f"no MCP server {tool.server!r}"
            )
        else:
            outcome = await connection.call(tool.name, arguments, server.timeouts.call_s)
        self._record(outcome, time.perf_counter() - started, arguments, request_id)
        return outcome

    def _record(self, outcome: ToolOutcome, latency: float, arguments: Any, request_id: str) -> None:
        metrics.MCP_TOOL_CALLS.labels(outcome.server, outcome.tool, outcome.outcome).inc()
        metrics.MCP_TOOL_LATENCY.labels(outcome.server, outcome.tool).observe(latency)
        if self.config.log_content:
            log.info(
                "request %s: MCP %s/%s %s in %.3f s; arguments %s; result %s",
                request_id,
                outcome.server,
                outcome.tool,
                outcome.outcome,
                latency,
                orjson.dumps(arguments).decode()[:4000],
                outcome.text[:4000],
            )
        else:
            log.info(
                "request %s: MCP %s/%s %s in %.3f s",
                request_id,
                outcome.server,
                outcome.tool,
                outcome.outcome,
                latency,
            )

    def status(self) -> dict[str, dict[str, Any]]:
        """Per server: connected, tool count, last error (what the operator puts in the CR status)."""
        out: dict[str, dict[str, Any]] = {}
        for name in self.servers:
            connection = self._connections.get(name)
            out[name] = connection.status.describe() if connection is not None else {"connected": False}
        return out


def _caller_key(identity: Identity | None) -> object:
    if identity is None:
        return None
    own = identity.attributes.get(IDENTITY_ATTRIBUTE)
    if own is None:
        return identity.key
    return (identity.key, orjson.dumps(own, option=orjson.OPT_SORT_KEYS))


# --- connections across revisions -------------------------------------------------------------------


@dataclass
class PendingConnections:
    """The connections the next revision uses: kept ones, and new ones not started yet."""

    live: dict[str, tuple[str, ServerConnection]]
    created: list[ServerConnection] = field(default_factory=list)
    replaced: list[ServerConnection] = field(default_factory=list)
    token: SecretValue | None = None


class McpConnections:
    """Every live server connection of the gateway, by name, with the fingerprint it was opened with."""

    def __init__(self) -> None:
        self._live: dict[str, tuple[str, ServerConnection]] = {}
        self.generation = 0
        """Moves when any connection's tools or state change: offers computed before are stale."""

    def prepare(self, config: McpConfig | None, resolver: SecretResolver) -> PendingConnections:
        """Connections for ``config``: unchanged ones reused, others created (not started).

        Raises ``ConfigError`` for a secret that cannot be resolved; nothing changes then.
        """
        servers = config.servers if config is not None else ()
        pending = PendingConnections({})
        if config is not None and config.serve.token is not None:
            pending.token = resolver.resolve(config.serve.token)
            register_secret(pending.token.reveal())
        for server in servers:
            secrets = {ref: resolver.resolve(ref).reveal() for ref in server.secret_refs()}
            fingerprint = _fingerprint(server, secrets)
            kept = self._live.get(server.name)
            if kept is not None and kept[0] == fingerprint:
                pending.live[server.name] = kept
                continue
            from asbru_gateway.mcp.connection import ServerConnection  # the SDK only when needed

            for value in secrets.values():
                register_secret(value)
            connection = ServerConnection(server, secrets)
            connection.on_change = self._changed
            pending.live[server.name] = (fingerprint, connection)
            pending.created.append(connection)
        kept_ids = {id(connection) for _, connection in pending.live.values()}
        pending.replaced = [conn for _, conn in self._live.values() if id(conn) not in kept_ids]
        return pending

    async def commit(self, pending: PendingConnections, wait_s: float) -> dict[str, ServerConnection]:
        """Make ``pending`` live: start the new connections, wait (bounded) for their first attempt."""
        self._live = pending.live
        for connection in pending.created:
            connection.start()
        if pending.created:
            await asyncio.gather(*(connection.wait_first(wait_s) for connection in pending.created))
        self._changed()
        return {name: connection for name, (_, connection) in pending.live.items()}

    async def close(self, connections: Iterable[ServerConnection] | None = None) -> None:
        """Close ``connections`` (default: all of them)."""
        targets = list(connections) if connections is not None else [c for _, c in self._live.values()]
        if connections is None:
            self._live = {}
        await asyncio.gather(*(connection.close() for connection in targets), return_exceptions=True)

    def _changed(self) -> None:
        self.generation += 1
        for _, connection in self._live.values():
            metrics.MCP_SERVER_UP.labels(connection.name).set(1 if connection.status.connected else 0)
            metrics.MCP_SERVER_TOOLS.labels(connection.name).set(connection.status.tool_count)


def _fingerprint(server: McpServerConfig, secrets: Mapping[str, str]) -> str:
    canonical = orjson.dumps(
        {"server": server.connection_fields(), "secrets": dict(sorted(secrets.items()))},
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(canonical).hexdigest()


def wait_for_first(servers: Iterable[McpServerConfig]) -> float:
    """How long ``commit`` waits for new servers' first connection: their longest connect timeout."""
    return min(max((server.timeouts.connect_s for server in servers), default=0.0), 30.0)
