"""The ASGI entry point: a path -> (dialect, endpoint) table, operational endpoints, the request id.

The table is built once from the dialect registry's mount points; a request costs one dict lookup
to find its handler. Paths with a model in them (Gemini's ``/models/{model}:generateContent``, Azure
style ``/openai/deployments/{id}/chat/completions``) are matched only when that lookup misses.
Unknown paths are a 404 and known paths with the wrong method a 405 with ``Allow``, both in the
OpenAI error shape (or the dialect's, under a dialect's prefix).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable
from importlib import resources
from urllib.parse import unquote

import orjson
import yaml
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from asbru_gateway.api import exchange
from asbru_gateway.api.mcp_endpoint import PREFIX as MCP_PREFIX
from asbru_gateway.api.mcp_endpoint import McpEndpoints
from asbru_gateway.api.responses import send_body, send_json
from asbru_gateway.api.types import Receive, Scope, Send
from asbru_gateway.config.model import SCHEMA_MINOR, SCHEMA_VERSION
from asbru_gateway.core.request import OPERATIONS
from asbru_gateway.dialects import registry
from asbru_gateway.dialects.base import MODELS, Dialect, ModelLookup
from asbru_gateway.dialects.registry import Mount
from asbru_gateway.errors import GatewayError, ModelNotFoundError, RouteNotFoundError
from asbru_gateway.observability.metrics import REGISTRY
from asbru_gateway.runtime.gateway import Gateway
from asbru_gateway.runtime.model_list import find_model, model_list

Handler = Callable[[Scope, Receive, Send, bytes], Awaitable[None]]
_LLM_OPERATIONS = frozenset(OPERATIONS)
MAX_REQUEST_ID = 128
MODEL_PREFIX = "/models/"


class ApiRouter:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.mcp = McpEndpoints(gateway)
        self._internal: dict[tuple[str, str], Handler] = {
            ("GET", "/healthz"): self._healthz,
            ("GET", "/health"): self._healthz,  # Bifrost's health path
            ("GET", "/readyz"): self._readyz,
            ("GET", "/metrics"): self._metrics,
            ("GET", "/openapi.json"): self._openapi,
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
        self._prefixes = sorted(
            ((root.path + "/", root.dialects[0]) for root in registry.roots() if root.path and root.dialects),
            key=lambda item: -len(item[0]),
        )
        """Longest prefix first: the dialect an unknown path under a dialect's prefix answers in."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = _request_id(scope)
        method, path = scope["method"], scope["path"]
        path_model = None
        mounts = self._mounts.get((method, path))
        if mounts is not None:
            mount = mounts[0] if len(mounts) == 1 else _disambiguate(mounts, scope)
        else:
            handler = self._internal.get((method, path))
            if handler is not None:
                await handler(scope, receive, send, request_id)
                return
            if path.startswith(MCP_PREFIX) and (len(path) == len(MCP_PREFIX) or path[len(MCP_PREFIX)] == "/"):
                await self.mcp.serve(scope, receive, send, request_id)
                return
            found = self._dynamic(method, path)
            if found is None:
                if path in self._paths:
                    await self._method_not_allowed(scope, send, request_id)
                else:
                    await self._not_found(path, send, request_id)
                return
            mount, path_model = found
        operation = mount.endpoint.operation
        if operation in _LLM_OPERATIONS:
            await exchange.serve(
                self.gateway,
                mount,
                scope,
                receive,
                send,
                request_id=request_id,
                path_model=path_model,
            )
        elif operation == MODELS:
            await self._models(mount, send, request_id)
        else:
            await self._model(mount, send, request_id, path_model or "")

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
                return self._deployment(method, path[len(root) :])
        return None

    def _deployment(self, method: str, tail: str) -> tuple[Mount, str] | None:
        """``{deployment}/{endpoint}``: the shortest deployment that leaves a served endpoint.

        The Azure SDK puts the model in the path unencoded, so ``provider/model`` names arrive with
        their slash (``openai/gpt-4o/chat/completions``).
        """
        slash = tail.find("/")
        while slash > 0:
            mounts = self._mounts.get((method, "/openai" + tail[slash:]))
            if mounts:
                return mounts[0], unquote(tail[:slash])
            slash = tail.find("/", slash + 1)
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
        status, body = self._dialect_of(path).error(error, request_id.decode())
        await send_body(send, status, body, request_id, headers=[(b"allow", ", ".join(allowed).encode())])

    async def _not_found(self, path: str, send: Send, request_id: bytes) -> None:
        error = RouteNotFoundError(f"no route for {_shown(path)}")
        status, body = self._dialect_of(path).error(error, request_id.decode())
        await send_body(send, status, body, request_id)

    def _dialect_of(self, path: str) -> Dialect:
        """The dialect whose prefix ``path`` is under (``/anthropic/...``, ``/genai/...``), for errors
        in the shape its SDK reads; OpenAI's elsewhere."""
        for prefix, dialect in self._prefixes:
            if path.startswith(prefix):
                return dialect
        return registry.OPENAI_DIALECTS[0]

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

    async def _openapi(self, scope: Scope, receive: Receive, send: Send, request_id: bytes) -> None:
        await send_body(send, 200, openapi_document(), request_id)

    async def _healthz(self, scope: Scope, receive: Receive, send: Send, request_id: bytes) -> None:
        await send_json(send, 200, {"status": "ok"}, request_id)

    async def _readyz(self, scope: Scope, receive: Receive, send: Send, request_id: bytes) -> None:
        """Ready or not, the served revision, the config schema this gateway reads (the operator
        writes the oldest its pods accept), and the last revision it refused and why."""
        gateway = self.gateway
        snapshot = gateway.current
        body: dict[str, object] = {
            "status": "ready" if gateway.ready else "draining" if gateway.draining else "starting",
            "revision": snapshot.revision if snapshot else None,
            "schema": {"version": SCHEMA_VERSION, "minor": SCHEMA_MINOR},
        }
        if gateway.last_rejected is not None:
            rejected = gateway.last_rejected
            body["rejected"] = {"revision": rejected.revision, "reason": rejected.reason}
        await send_json(send, 200 if gateway.ready and snapshot is not None else 503, body, request_id)

    async def _metrics(self, scope: Scope, receive: Receive, send: Send, request_id: bytes) -> None:
        await send_body(
            send, 200, generate_latest(REGISTRY), request_id, content_type=CONTENT_TYPE_LATEST.encode()
        )


@functools.cache
def openapi_document() -> bytes:
    """The client API's OpenAPI document (``api/openapi.yaml``), as JSON, loaded once."""
    text = resources.files("asbru_gateway.api").joinpath("openapi.yaml").read_text(encoding="utf-8")
    return orjson.dumps(yaml.safe_load(text))


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
