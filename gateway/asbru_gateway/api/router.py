"""The ASGI entry point: a path -> (dialect, endpoint) table, operational endpoints, the request id.

The table is built once from the dialect registry's mount points; a request costs one dict lookup
to find its handler. Paths with a model in them (Gemini's ``/models/{model}:generateContent``, Azure
style ``/openai/deployments/{id}/chat/completions``) are matched only when that lookup misses.
Unknown paths are a 404 and known paths with the wrong method a 405 with ``Allow``, both in the
OpenAI error shape (or the dialect's, under a dialect's prefix).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from asbru_gateway.api import exchange
from asbru_gateway.api.disconnect import DisconnectSweeper
from asbru_gateway.api.mcp_endpoint import PREFIX as MCP_PREFIX
from asbru_gateway.api.mcp_endpoint import McpEndpoints
from asbru_gateway.api.responses import send_body, send_error, send_json
from asbru_gateway.api.types import Receive, Scope, Send
from asbru_gateway.dialects import registry
from asbru_gateway.dialects.base import MODEL, MODELS, ModelLookup
from asbru_gateway.dialects.registry import Mount
from asbru_gateway.errors import GatewayError, ModelNotFoundError, RouteNotFoundError
from asbru_gateway.observability.metrics import REGISTRY
from asbru_gateway.runtime.gateway import Gateway
from asbru_gateway.runtime.model_list import find_model, model_list

Handler = Callable[[Scope, Receive, Send, bytes], Awaitable[None]]
MAX_REQUEST_ID = 128
MODEL_PREFIX = "/models/"


class ApiRouter:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.disconnects = DisconnectSweeper()
        self.mcp = McpEndpoints(gateway)
        self._internal: dict[tuple[str, str], Handler] = {
            ("GET", "/healthz"): self._healthz,
            ("GET", "/health"): self._healthz,  # Bifrost's health path
            ("GET", "/readyz"): self._readyz,
            ("GET", "/metrics"): self._metrics,
            ("POST", "/v1/mcp/tool/execute"): self.mcp.execute,
            ("GET", "/v1/mcp/servers"): self.mcp.servers,
            ("GET", "/readyz/mcp"): self.mcp.readiness,
        }
        self._mounts: dict[tuple[str, str], list[Mount]] = {}
        self._model_paths: dict[tuple[str, str, str], Mount] = {}
        """(method, root + "/models/", ":method") -> mount, for Gemini-style model paths."""
        for root in registry.roots():
            for dialect in root.dialects:
                for endpoint in dialect.endpoints:
                    mount = Mount(dialect, endpoint, root.family)
                    if "{model}" in endpoint.path:
                        prefix, _, suffix = endpoint.path.partition("{model}")
                        if not prefix.endswith(MODEL_PREFIX) or suffix[:1] not in ("", ":"):
                            raise ValueError(
                                f"model paths look like .../models/{{model}}[:method]: {endpoint}"
                            )
                        self._model_paths[(endpoint.method, root.path + prefix, suffix)] = mount
                    else:
                        key = (endpoint.method, root.path + endpoint.path)
                        self._mounts.setdefault(key, []).append(mount)
        self._paths = {path for _, path in (*self._internal, *self._mounts)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = _request_id(scope)
        method, path = scope["method"], scope["path"]
        mounts = self._mounts.get((method, path))
        if mounts is not None:
            await self._serve(mounts, scope, receive, send, request_id=request_id, path_model=None)
            return
        handler = self._internal.get((method, path))
        if handler is not None:
            await handler(scope, receive, send, request_id)
            return
        if path.startswith(MCP_PREFIX) and (len(path) == len(MCP_PREFIX) or path[len(MCP_PREFIX)] == "/"):
            await self.mcp.serve(scope, receive, send, request_id)
            return
        found = self._dynamic(method, path)
        if found is not None:
            await self._serve([found[0]], scope, receive, send, request_id=request_id, path_model=found[1])
        elif path in self._paths:
            await self._method_not_allowed(scope, send, request_id)
        else:
            await send_error(send, RouteNotFoundError(f"no route for {_shown(path)}"), request_id)

    async def _serve(
        self,
        mounts: list[Mount],
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        request_id: bytes,
        path_model: str | None,
    ) -> None:
        mount = mounts[0] if len(mounts) == 1 else _disambiguate(mounts, scope)
        if mount.endpoint.operation == MODELS:
            await self._models(mount, send, request_id)
            return
        if mount.endpoint.operation == MODEL:
            await self._model(mount, send, request_id, path_model or "")
            return
        await exchange.serve(
            self.gateway,
            mount,
            scope,
            receive,
            send,
            request_id=request_id,
            path_model=path_model,
            disconnects=self.disconnects,
        )

    def _dynamic(self, method: str, path: str) -> tuple[Mount, str] | None:
        """A model-in-path endpoint, or an Azure-style deployment path.

        Model paths are ``{root}/models/{model}:{method}`` (or ``{root}/models/{model}`` for one
        model's description), found with a dict lookup or two: the root ends
        at the first ``/models/`` (no root contains one), the method starts at the last ``:``. So a
        model name may hold slashes (google-genai sends ``openai/gpt-4o`` unescaped), ``/models/``
        and colons (``ollama/llama3:8b``). The ASGI path is decoded already: no second unquote.
        """
        start = path.find(MODEL_PREFIX)
        if start >= 0:
            root_end = start + len(MODEL_PREFIX)
            colon = path.rfind(":")
            if colon > root_end:
                mount = self._model_paths.get((method, path[:root_end], path[colon:]))
                if mount is not None:
                    return mount, path[root_end:colon]
            mount = self._model_paths.get((method, path[:root_end], ""))  # GET .../models/{id}
            if mount is not None and len(path) > root_end:
                return mount, path[root_end:]
        for root in registry.AZURE_DEPLOYMENT_ROOTS:
            if path.startswith(root):
                deployment, slash, rest = path[len(root) :].partition("/")
                mounts = self._mounts.get((method, "/openai/" + rest)) if slash and deployment else None
                if mounts:
                    return mounts[0], unquote(deployment)
        return None

    async def _method_not_allowed(self, scope: Scope, send: Send, request_id: bytes) -> None:
        path = scope["path"]
        allowed = sorted({m for m, p in (*self._internal, *self._mounts) if p == path})
        error = GatewayError(
            f"method {scope['method']} not allowed",
            status=405,
            type="invalid_request_error",
            code="method_not_allowed",
        )
        await send_body(
            send, 405, error.to_body(), request_id, headers=[(b"allow", ", ".join(allowed).encode())]
        )

    async def _models(self, mount: Mount, send: Send, request_id: bytes) -> None:
        snapshot = self.gateway.current
        models = model_list(snapshot) if snapshot and snapshot.config.server.expose_models else []
        await send_body(send, 200, mount.dialect.models(models), request_id)

    async def _model(self, mount: Mount, send: Send, request_id: bytes, model_id: str) -> None:
        snapshot = self.gateway.current
        dialect = mount.dialect
        found = find_model(snapshot, model_id) if snapshot and snapshot.config.server.expose_models else None
        if found is None or not isinstance(dialect, ModelLookup):
            error = ModelNotFoundError(f"The model {_shown(model_id)!r} does not exist", param="model")
            status, body = dialect.error(error, request_id.decode())
            await send_body(send, status, body, request_id)
            return
        await send_body(send, 200, dialect.model(found), request_id)

    async def _healthz(self, scope: Scope, receive: Receive, send: Send, request_id: bytes) -> None:
        await send_json(send, 200, {"status": "ok"}, request_id)

    async def _readyz(self, scope: Scope, receive: Receive, send: Send, request_id: bytes) -> None:
        gateway = self.gateway
        snapshot = gateway.current
        if gateway.ready and snapshot is not None:
            await send_json(send, 200, {"status": "ready", "revision": snapshot.revision}, request_id)
        else:
            status = "draining" if gateway.draining else "starting"
            await send_json(
                send, 503, {"status": status, "revision": snapshot.revision if snapshot else None}, request_id
            )

    async def _metrics(self, scope: Scope, receive: Receive, send: Send, request_id: bytes) -> None:
        await send_body(
            send, 200, generate_latest(REGISTRY), request_id, content_type=CONTENT_TYPE_LATEST.encode()
        )


def _disambiguate(mounts: list[Mount], scope: Scope) -> Mount:
    """Two dialects on one path (``/litellm/v1/models``): Anthropic's SDK sends ``anthropic-version``."""
    anthropic = any(name == b"anthropic-version" for name, _ in scope["headers"])
    for mount in mounts:
        if (mount.dialect.family == "anthropic") == anthropic:
            return mount
    return mounts[0]


def _shown(path: str) -> str:
    return path if len(path) <= 200 else path[:200] + "..."


def _request_id(scope: Scope) -> bytes:
    """The client's ``x-request-id`` if it is short printable ASCII, else a new random one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if _safe(value):
                return bytes(value)
            break
    return os.urandom(12).hex().encode()


def _safe(value: bytes) -> bool:
    return 0 < len(value) <= MAX_REQUEST_ID and all(0x21 <= byte <= 0x7E for byte in value)
