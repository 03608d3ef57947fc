"""The ASGI entry point: a dict from (method, path) to handler, and the request id on everything.

The table is built once; a request costs one dict lookup to find its handler. Unknown paths are
an OpenAI-format 404, known paths with the wrong method a 405 with ``Allow``.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from asbru_gateway.api.disconnect import DisconnectSweeper
from asbru_gateway.api.llm_call import serve_call
from asbru_gateway.api.models import list_models
from asbru_gateway.api.responses import send_body, send_error, send_json
from asbru_gateway.api.types import Receive, Scope, Send
from asbru_gateway.errors import GatewayError, RouteNotFoundError
from asbru_gateway.observability.metrics import REGISTRY
from asbru_gateway.runtime import Gateway

Handler = Callable[[Scope, Receive, Send, bytes], Awaitable[None]]
MAX_REQUEST_ID = 128


class ApiRouter:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.disconnects = DisconnectSweeper()
        self._routes: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/chat/completions"): self._chat,
            ("POST", "/chat/completions"): self._chat,
            ("POST", "/v1/embeddings"): self._embeddings,
            ("POST", "/embeddings"): self._embeddings,
            ("GET", "/v1/models"): self._models,
            ("GET", "/models"): self._models,
            ("GET", "/healthz"): self._healthz,
            ("GET", "/readyz"): self._readyz,
            ("GET", "/metrics"): self._metrics,
        }
        self._paths = {path for _, path in self._routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = _request_id(scope)
        handler = self._routes.get((scope["method"], scope["path"]))
        if handler is not None:
            await handler(scope, receive, send, request_id)
        elif scope["path"] in self._paths:
            allowed = sorted(m for m, p in self._routes if p == scope["path"])
            error = GatewayError(
                f"method {scope['method']} not allowed",
                status=405,
                type="invalid_request_error",
                code="method_not_allowed",
            )
            await send_body(
                send, 405, error.to_body(), request_id, headers=[(b"allow", ", ".join(allowed).encode())]
            )
        else:
            await send_error(send, RouteNotFoundError(f"no route for {scope['path']}"), request_id)

    async def _chat(self, scope: Scope, receive: Receive, send: Send, request_id: bytes) -> None:
        await serve_call(
            self.gateway, "chat", scope, receive, send, request_id=request_id, disconnects=self.disconnects
        )

    async def _embeddings(self, scope: Scope, receive: Receive, send: Send, request_id: bytes) -> None:
        await serve_call(
            self.gateway,
            "embeddings",
            scope,
            receive,
            send,
            request_id=request_id,
            disconnects=self.disconnects,
        )

    async def _models(self, scope: Scope, receive: Receive, send: Send, request_id: bytes) -> None:
        snapshot = self.gateway.current
        data = (
            list_models(snapshot)
            if snapshot and snapshot.config.server.expose_models
            else {"object": "list", "data": []}
        )
        await send_json(send, 200, data, request_id)

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
