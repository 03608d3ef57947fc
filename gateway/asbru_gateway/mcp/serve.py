"""The gateway as an MCP server: ``/mcp`` serves the tools a caller may use, ``/mcp/<bundle>`` a bundle.

Built on the SDK's server side (a low-level ``Server`` behind a ``StreamableHTTPSessionManager``),
so both protocol eras are spoken: 2026-07-28 clients send self-contained requests, and 2025 clients
run the ``initialize`` handshake. The manager runs *stateless* (no session ids, JSON answers): no
state lives in one pod, so any replica behind a Service answers any request of any client, the
handshake's included.

The api layer authenticates the caller and finds the bundle; it hands them over in the ASGI scope
(``CALLER_KEY``), where the handlers read them. ``tools/list`` is the caller's offer (``McpHub``),
narrowed to the bundle; ``tools/call`` runs on the owning server and answers its ``CallToolResult``
as it came (a gateway-side failure, such as a server that is down, is an ``isError`` result that
says why). A tool the caller may not use is unknown to it, as if it did not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import mcp_types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from starlette.requests import Request

from asbru_gateway.config.mcp import McpBundle, McpServeConfig
from asbru_gateway.core.identity import Identity
from asbru_gateway.mcp.hub import McpHub
from asbru_gateway.mcp.names import matches
from asbru_gateway.mcp.tools import McpTool

CALLER_KEY = "asbru.mcp_caller"
# The SDK and its HTTP client log a line per request and session at INFO: not on the gateway's path.
logging.getLogger("mcp").setLevel(logging.WARNING)
Scope = MutableMapping[str, Any]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls ``/mcp`` (resolved by the api layer) and what they asked for."""

    hub: McpHub
    identity: Identity | None
    bundle: McpBundle | None
    request_id: str


def tools_for(caller: Caller) -> dict[str, McpTool]:
    """The caller's tools by exposed name, narrowed to its bundle."""
    tools = caller.hub.offer_for(caller.identity).by_name
    bundle = caller.bundle
    if bundle is None:
        return tools
    entries = [entry.partition("/") for entry in bundle.tools]
    return {
        name: tool
        for name, tool in tools.items()
        if any(server == tool.server and matches((pattern,), tool.name) for server, _, pattern in entries)
    }


def security_settings(serve: McpServeConfig) -> TransportSecuritySettings:
    """Host and Origin allow-lists (DNS rebinding protection); ``*`` among the hosts turns it off."""
    if "*" in serve.allowed_hosts:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(
        allowed_hosts=list(serve.allowed_hosts), allowed_origins=list(serve.allowed_origins)
    )


class McpService:
    """One SDK server and session manager for the process; the config reaches it through the caller."""

    def __init__(self) -> None:
        self._server: Server[Any] = Server(
            "asbru-gateway", version="0.1.0", on_list_tools=_list_tools, on_call_tool=_call_tool
        )
        self._server.middleware = []  # no OpenTelemetry span per message on the gateway's own endpoint
        self._manager = StreamableHTTPSessionManager(app=self._server, stateless=True, json_response=True)
        self._task: asyncio.Task[None] | None = None
        self._running = asyncio.Event()
        self._stop = asyncio.Event()
        self._security: tuple[McpServeConfig, TransportSecurityMiddleware] | None = None

    async def handle(
        self, scope: Scope, receive: Any, send: Any, caller: Caller, serve: McpServeConfig
    ) -> None:
        await self._started()
        refused = await self._check(scope, receive, serve)
        if refused is not None:
            await refused(scope, receive, send)
            return
        await self._manager.handle_request({**scope, CALLER_KEY: caller}, receive, send)

    async def _check(self, scope: Scope, receive: Any, serve: McpServeConfig) -> Any:
        cached = self._security
        if cached is None or cached[0] is not serve:
            cached = self._security = (serve, TransportSecurityMiddleware(security_settings(serve)))
        return await cached[1].validate_request(Request(scope, receive), is_post=scope["method"] == "POST")

    async def _started(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="mcp-endpoint")
        await self._running.wait()

    async def _run(self) -> None:
        async with self._manager.run():
            self._running.set()
            await self._stop.wait()

    async def stop(self) -> None:
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)


def _caller(ctx: ServerRequestContext[Any, Any]) -> Caller:
    request = ctx.request
    caller = request.scope.get(CALLER_KEY) if isinstance(request, Request) else None
    if not isinstance(caller, Caller):
        raise MCPError(mcp_types.INTERNAL_ERROR, "the gateway lost track of the caller")
    return caller


async def _list_tools(
    ctx: ServerRequestContext[Any, Any], params: mcp_types.PaginatedRequestParams | None
) -> mcp_types.ListToolsResult:
    tools = tools_for(_caller(ctx)).values()
    return mcp_types.ListToolsResult(tools=[mcp_types.Tool.model_validate(tool.served()) for tool in tools])


async def _call_tool(
    ctx: ServerRequestContext[Any, Any], params: mcp_types.CallToolRequestParams
) -> mcp_types.CallToolResult:
    caller = _caller(ctx)
    tool = tools_for(caller).get(params.name)
    if tool is None:
        raise MCPError(mcp_types.INVALID_PARAMS, f"Unknown tool: {params.name}")
    outcome = await caller.hub.call(tool, dict(params.arguments or {}), request_id=caller.request_id)
    return mcp_types.CallToolResult.model_validate(outcome.as_result())
