"""The MCP endpoints: ``/mcp`` (and ``/mcp/<bundle>``), ``POST /v1/mcp/tool/execute``,
``GET /v1/mcp/servers`` (and, unauthenticated for the operator's probe, ``GET /readyz/mcp``).

Who is calling is decided the same way for all three: a plugin that authenticates callers
(``Authenticator``: governance with virtual keys) decides when there is one; otherwise, when
``mcp.serve.token`` is set, the caller must present it (as a bearer token, or wherever its SDK puts
keys); otherwise the endpoints are open (to the hosts ``/mcp`` allows). The caller's tools are then
its offer (``McpHub.offer_for``): the same tools a chat request of the same caller gets.

``/v1/mcp/tool/execute`` takes one tool call in the shape a model returned it (Bifrost's endpoint)
and answers the tool message to append to the conversation: a client running its own loop needs
nothing else. A tool that fails on its own (``isError``) is a normal answer; a server that is down
or too slow is a 503 / 504 in the OpenAI error shape.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

import orjson

from asbru_gateway.api.request_body import read_body
from asbru_gateway.api.responses import send_body, send_error, send_json
from asbru_gateway.api.types import Receive, Scope, Send
from asbru_gateway.core.headers import RequestHeaders
from asbru_gateway.core.identity import Identity, read_credential
from asbru_gateway.errors import GatewayError, InvalidRequestError, RouteNotFoundError, UnauthorizedError
from asbru_gateway.mcp.hub import McpHub
from asbru_gateway.runtime.agent import parse_arguments
from asbru_gateway.runtime.gateway import Gateway, Snapshot

if TYPE_CHECKING:
    from asbru_gateway.mcp.serve import McpService

PREFIX = "/mcp"


class McpEndpoints:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._service: McpService | None = None

    # --- /mcp -------------------------------------------------------------------------------------

    async def serve(self, scope: Scope, receive: Receive, send: Send, request_id: bytes) -> None:
        snapshot = self.gateway.current
        hub = snapshot.mcp if snapshot is not None else None
        path = scope["path"].rstrip("/")
        if hub is None or snapshot is None or not hub.config.serve.enabled:
            await send_error(send, RouteNotFoundError(f"no route for {path[:200]}"), request_id)
            return
        bundle = None
        if path != PREFIX:
            name = path[len(PREFIX) + 1 :]
            bundle = next((b for b in hub.config.serve.bundles if b.name == name), None)
            if bundle is None:
                await send_error(send, RouteNotFoundError(f"no MCP bundle {name[:100]!r}"), request_id)
                return
        try:
            identity = await self._caller(snapshot, hub, scope)
        except GatewayError as error:
            await _refuse(send, error, request_id)
            return
        from asbru_gateway.mcp.serve import Caller, McpService

        if self._service is None:
            self._service = McpService()
        caller = Caller(hub, identity, bundle, request_id.decode())
        snapshot.active += 1
        try:
            await self._service.handle(scope, receive, send, caller, hub.config.serve)
        finally:
            snapshot.leave()

    async def stop(self) -> None:
        if self._service is not None:
            await self._service.stop()

    # --- /v1/mcp/tool/execute ---------------------------------------------------------------------

    async def execute(self, scope: Scope, receive: Receive, send: Send, request_id: bytes) -> None:
        snapshot = self.gateway.current
        hub = snapshot.mcp if snapshot is not None else None
        if hub is None or snapshot is None:
            await send_error(send, RouteNotFoundError("no MCP servers are configured"), request_id)
            return
        snapshot.active += 1
        try:
            identity = await self._caller(snapshot, hub, scope)
            call = _tool_call(await read_body(scope, receive, snapshot.config.server.max_body_bytes))
            status, body = await _execute(hub, identity, RequestHeaders(scope["headers"]), call, request_id)
        except GatewayError as error:
            await _refuse(send, error, request_id)
            return
        finally:
            snapshot.leave()
        await send_json(send, status, body, request_id)

    # --- /v1/mcp/servers --------------------------------------------------------------------------

    async def servers(self, scope: Scope, receive: Receive, send: Send, request_id: bytes) -> None:
        """Each server's state (what the operator puts in the LLMMCPServer status), same auth."""
        snapshot = self.gateway.current
        hub = snapshot.mcp if snapshot is not None else None
        if hub is None or snapshot is None:
            await send_json(
                send, 200, {"revision": snapshot.revision if snapshot else None, "servers": {}}, request_id
            )
            return
        try:
            await self._caller(snapshot, hub, scope)
        except GatewayError as error:
            await _refuse(send, error, request_id)
            return
        await send_json(send, 200, {"revision": snapshot.revision, "servers": hub.status()}, request_id)

    async def readiness(self, scope: Scope, receive: Receive, send: Send, request_id: bytes) -> None:
        """The same, unauthenticated (like ``/readyz``): what the operator reads from each pod."""
        snapshot = self.gateway.current
        hub = snapshot.mcp if snapshot is not None else None
        servers = hub.status() if hub is not None else {}
        await send_json(
            send, 200, {"revision": snapshot.revision if snapshot else None, "servers": servers}, request_id
        )

    # --- who calls --------------------------------------------------------------------------------

    async def _caller(self, snapshot: Snapshot, hub: McpHub, scope: Scope) -> Identity | None:
        credential = read_credential(scope["headers"], scope.get("query_string", b""))
        pipeline = snapshot.pipeline
        if pipeline.has_authenticators:
            identity = await pipeline.authenticate(credential, RequestHeaders(scope["headers"]))
            if identity is not None:
                return identity
        token = hub.token
        if token is None:
            if pipeline.has_authenticators:
                raise UnauthorizedError("a valid key is required")
            return None
        if credential is None or not hmac.compare_digest(
            credential.reveal().encode(), token.reveal().encode()
        ):
            raise UnauthorizedError("a valid gateway token is required (mcp.serve.token)")
        return None


async def _execute(
    hub: McpHub, identity: Identity | None, headers: RequestHeaders, call: dict[str, Any], request_id: bytes
) -> tuple[int, dict[str, Any]]:
    function = call["function"]
    tool = hub.offer_for(identity, headers).by_name.get(function["name"])
    if tool is None:  # unknown and not allowed look alike: a caller learns nothing of others' tools
        raise RouteNotFoundError(f"no MCP tool {function['name'][:200]!r} available to this caller")
    arguments = parse_arguments(call)
    if isinstance(arguments, str):
        raise InvalidRequestError(
            f"tool call {function['name'][:200]!r}: {arguments}", param="function.arguments"
        )
    outcome = await hub.call(tool, arguments, request_id=request_id.decode())
    if outcome.result is None and outcome.outcome in _FAILURES:
        status, kind = _FAILURES[outcome.outcome]
        raise GatewayError(outcome.text, status=status, type="server_error", code=kind)
    return 200, {"role": "tool", "tool_call_id": call.get("id") or "", "content": outcome.text}


_FAILURES = {
    "unavailable": (503, "mcp_server_unavailable"),
    "timeout": (504, "mcp_tool_timeout"),
    "error": (502, "mcp_tool_failed"),
}


def _tool_call(body: bytes) -> dict[str, Any]:
    """The body as a tool call: ``{"id", "type": "function", "function": {"name", "arguments"}}``."""
    try:
        call = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidRequestError(f"request body is not valid JSON: {error}") from None
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
        raise InvalidRequestError(
            'expected a tool call: {"id", "type": "function", "function": {"name", "arguments"}}',
            param="function.name",
        )
    return call  # type: ignore[no-any-return]


async def _refuse(send: Send, error: GatewayError, request_id: bytes) -> None:
    headers = [(b"www-authenticate", b"Bearer")] if error.status == 401 else []
    await send_body(send, error.status, error.to_body(), request_id, headers=headers)
