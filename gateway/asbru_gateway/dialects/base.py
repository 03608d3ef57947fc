"""The dialect contract: one client API (OpenAI chat, Responses, Anthropic Messages, Gemini, ...).

A dialect is, like a provider, a registry entry plus pure translators (no I/O):

- ``endpoints``: which paths it serves, and the operation of each (chat, embeddings, count_tokens,
  models);
- ``parse``: the client's HTTP request (``Incoming``) -> an ``LLMRequest``: the model and stream
  flag read from the body (or the path), the body translated into the core schema, or kept as it is
  for pass-through when the dialect has a native format a provider can take;
- ``render``: a complete ``Reply`` -> response bytes in the dialect's shape (a reply in the
  dialect's own format passes through unchanged);
- ``stream``: a ``StreamRenderer`` for one streamed answer: each batch of items is rendered and sent
  as it arrives, never buffered;
- ``error``: a ``GatewayError`` (and the request id) -> (status, body) in the dialect's error shape.

The api layer does nothing else with a request than find its dialect by path and call these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import orjson

from asbru_gateway.core.chunks import STEP_KEY, core_chunks
from asbru_gateway.core.reply import Reply, StreamItem
from asbru_gateway.core.request import LLMRequest, ToCore
from asbru_gateway.core.usage import Usage
from asbru_gateway.errors import GatewayError, InvalidRequestError

MODELS = "models"
"""The operation of a model-listing endpoint (answered by the api from the snapshot)."""
MODEL = "model"
"""The operation of a one-model endpoint (``GET /v1/models/{id}``), for dialects with ``ModelLookup``."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    """Path under the dialect's root. ``{model}`` marks a model in the path (Gemini's
    ``/models/{model}:generateContent``); ``{deployment}`` an Azure deployment id."""
    operation: str
    stream: bool | None = None
    """For paths that fix the stream flag themselves (Gemini ``:streamGenerateContent``)."""


class Incoming:
    """What the api read of one HTTP request, before a dialect parses it."""

    __slots__ = ("body", "endpoint", "family", "headers", "path_model", "query", "request_id")

    def __init__(  # noqa: PLR0917 - built once per request, positionally on the hot path
        self,
        request_id: str,
        endpoint: Endpoint,
        body: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        query: bytes,
        path_model: str | None,
        family: str | None,
    ) -> None:
        self.request_id = request_id
        self.endpoint = endpoint
        self.body = body
        self.headers = headers
        self.query = query
        self.path_model = path_model
        """The model named in the path (Gemini, Azure-style deployments), URL-decoded."""
        self.family = family
        """The provider family of the drop-in prefix the request came through, if any."""


class StreamRenderer(Protocol):
    """Renders one streamed answer in a dialect, batch by batch, as it arrives."""

    def items(self, items: list[StreamItem]) -> bytes:
        """The bytes for these items (may be empty: not everything is visible in every dialect)."""
        ...

    def end(self, usage: Usage | None) -> bytes:
        """The normal end of the stream (usage as the upstream reported it, if at all)."""
        ...

    def error(self, error: GatewayError) -> bytes:
        """An error after the stream started: the dialect's error event, ending the stream."""
        ...


class Dialect(Protocol):
    id: str
    family: str
    """The provider family this dialect's SDK was made for (``openai``, ``anthropic``, ``gemini``)."""
    endpoints: tuple[Endpoint, ...]
    stream_content_type: bytes

    def parse(self, incoming: Incoming) -> LLMRequest: ...

    def render(self, request: LLMRequest, reply: Reply) -> bytes: ...

    def stream(self, request: LLMRequest) -> StreamRenderer: ...

    def error(self, error: GatewayError, request_id: str | None = None) -> tuple[int, bytes]:
        """(status, body) in the dialect's error shape; ``request_id`` goes in the body where the
        dialect has a place for it (Anthropic's ``request_id``); the api sets ``x-request-id`` anyway."""
        ...

    def models(self, models: list[tuple[str, str]]) -> bytes:
        """A model list in the dialect's shape from ``(id, owner)`` pairs."""
        ...


@runtime_checkable
class ModelLookup(Protocol):
    """Optional capability: render one model (``GET .../models/{id}``)."""

    def model(self, model: tuple[str, str]) -> bytes:
        """One ``(id, owner)`` in the dialect's model shape."""
        ...


# --- helpers every dialect uses -------------------------------------------------------------------


def parse_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    if not body:
        raise InvalidRequestError("request body is empty; expected a JSON object")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidRequestError(f"request body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("request body must be a JSON object")
    return data


def require_model(data: dict[str, Any], param: str = "model") -> str:
    model = data.get(param)
    if not isinstance(model, str) or not model:
        raise InvalidRequestError(f"you must provide a {param} parameter", param=param)
    return model


def stream_flag(data: dict[str, Any]) -> bool:
    stream = data.get("stream", False)
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise InvalidRequestError("stream must be a boolean", param="stream")
    return stream


def pop_fallbacks(data: dict[str, Any]) -> list[Any] | None:
    """Remove and return Bifrost's per-request ``fallbacks`` (routing validates the names)."""
    fallbacks = data.pop("fallbacks", None)
    if fallbacks is None:
        return None
    if not isinstance(fallbacks, list):
        raise InvalidRequestError("fallbacks must be a list of model names", param="fallbacks")
    return fallbacks


def new_request(
    incoming: Incoming, dialect: str, *, model: str, stream: bool, fallbacks: list[Any] | None, **body: Any
) -> LLMRequest:
    """The ``LLMRequest`` for ``incoming``: what the api read (id, operation, family, headers, query)
    plus what the dialect parsed. ``body``: ``core=...``, or ``native=``, ``native_format=``, ``to_core=``."""
    return LLMRequest(
        request_id=incoming.request_id,
        operation=incoming.endpoint.operation,
        dialect=dialect,
        model=model,
        stream=stream,
        fallbacks=fallbacks,
        family=incoming.family,
        raw_headers=incoming.headers,
        query=incoming.query,
        **body,
    )


def native_request(
    incoming: Incoming,
    body: dict[str, Any],
    *,
    dialect: str,
    model: str,
    stream: bool,
    native_format: str,
    to_core: ToCore,
) -> LLMRequest:
    """A chat request that keeps the client's ``body`` for pass-through (``fallbacks`` popped from it)."""
    return new_request(
        incoming,
        dialect,
        model=model,
        stream=stream,
        fallbacks=pop_fallbacks(body),
        native=body,
        native_format=native_format,
        to_core=to_core,
    )


def step_input(step: dict[str, Any]) -> dict[str, Any]:
    """A tool step's arguments as an object (``{}`` when they are not one)."""
    try:
        value = orjson.loads(step.get("arguments") or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def sse(payload: Any, event: str | None = None) -> bytes:
    """One SSE event with a JSON payload (and an ``event:`` name, as Anthropic and Responses use)."""
    data = b"data: " + orjson.dumps(payload) + b"\n\n"
    return b"event: " + event.encode() + b"\n" + data if event else data


__all__ = [
    "STEP_KEY",
    "core_chunks",
]  # moved to core.chunks (the agent loop reads chunks too); kept importable here
