"""OpenAI chat completions, embeddings and models: the dialect that *is* the core schema.

``/chat/completions`` bodies are core bodies already, so parsing is a check of the fields every
request needs and rendering forwards core bytes as they came from the provider. Two things are
added for Bifrost's clients: ``extra_fields`` (which provider served, and the model asked for) in
JSON bodies, spliced in as bytes rather than re-serialising a body nobody else needs to read.
"""

from __future__ import annotations

from typing import Any

import orjson

from asbru_gateway.core.formats import CORE
from asbru_gateway.core.reply import Reply, StreamItem
from asbru_gateway.core.request import CHAT, EMBEDDINGS, LLMRequest
from asbru_gateway.core.usage import Usage
from asbru_gateway.dialects.base import (
    MODEL,
    MODELS,
    Endpoint,
    Incoming,
    core_chunks,
    parse_object,
    pop_fallbacks,
    require_model,
    stream_flag,
)
from asbru_gateway.errors import GatewayError, InvalidRequestError

DONE_EVENT = b"data: [DONE]\n\n"


class OpenAIChatDialect:
    id = "openai.chat"
    family = "openai"
    stream_content_type = b"text/event-stream; charset=utf-8"
    endpoints: tuple[Endpoint, ...] = (
        Endpoint("POST", "/chat/completions", CHAT),
        Endpoint("POST", "/embeddings", EMBEDDINGS),
        Endpoint("GET", "/models", MODELS),
        Endpoint("GET", "/models/{model}", MODEL),
    )

    def parse(self, incoming: Incoming) -> LLMRequest:
        # The hottest function of the gateway: the common case is checked inline, the helpers
        # (with their precise error messages) run only when something is off.
        body = parse_object(incoming.body)
        if incoming.path_model is not None:  # Azure-style /openai/deployments/{id}/...
            body["model"] = incoming.path_model
        model = body.get("model")
        if type(model) is not str or not model:
            model = require_model(body)
        fallbacks = pop_fallbacks(body) if "fallbacks" in body else None
        operation = incoming.endpoint.operation
        if operation == EMBEDDINGS:
            if body.get("input") in (None, "", []):
                raise InvalidRequestError("you must provide an input parameter", param="input")
            stream = False
        else:
            _check_messages(body)
            stream = body.get("stream", False)
            if stream is not False and stream is not True:
                stream = stream_flag(body)
        return LLMRequest(
            incoming.request_id,
            operation,
            self.id,
            model,
            stream=stream,
            core=body,
            fallbacks=fallbacks,
            family=incoming.family,
            raw_headers=incoming.headers,
            query=incoming.query,
        )

    def render(self, request: LLMRequest, reply: Reply) -> bytes:
        body = reply.body if reply.format == CORE else orjson.dumps(reply.data)
        return with_extra_fields(body, request)

    def stream(self, request: LLMRequest) -> OpenAIChatRenderer:
        return OpenAIChatRenderer()

    def error(self, error: GatewayError, request_id: str | None = None) -> tuple[int, bytes]:
        return error.status, error.to_body()  # OpenAI's error body has no place for the request id

    def models(self, models: list[tuple[str, str]]) -> bytes:
        return model_list(models)

    def model(self, model: tuple[str, str]) -> bytes:
        return orjson.dumps(_model_object(model))


def model_list(models: list[tuple[str, str]]) -> bytes:
    """OpenAI's ``/models`` list (every OpenAI dialect answers in this shape)."""
    return orjson.dumps({"object": "list", "data": [_model_object(model) for model in models]})


def _model_object(model: tuple[str, str]) -> dict[str, Any]:
    name, owner = model
    return {"id": name, "object": "model", "created": 0, "owned_by": owner}


def _check_messages(body: dict[str, Any]) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError("messages must be a non-empty array", param="messages")
    for message in messages:
        if type(message) is not dict or type(message.get("role")) is not str:
            _bad_message(messages)
    options = body.get("stream_options")
    if options is not None and type(options) is not dict:
        raise InvalidRequestError("stream_options must be an object", param="stream_options")


def _bad_message(messages: list[Any]) -> None:
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequestError("each message must be an object", param="messages")
        if not isinstance(message.get("role"), str):
            raise InvalidRequestError("each message needs a string role", param=f"messages[{index}].role")


def with_extra_fields(body: bytes, request: LLMRequest) -> bytes:
    """Bifrost's ``extra_fields`` (provider, model_requested) added to a JSON object body, as bytes.

    Spliced in before the closing brace rather than re-serialising a body nobody else needs to
    read; the encoded field is cached per (provider, model asked for).
    """
    end = body.rfind(b"}")
    provider = request.provider
    if end <= 0 or provider is None:
        return body
    key = (provider, request.requested_model)
    extra = _EXTRA_FIELDS.get(key)
    if extra is None:
        extra = b'"extra_fields":' + orjson.dumps({"provider": provider, "model_requested": key[1]})
        if len(_EXTRA_FIELDS) < 4096:
            _EXTRA_FIELDS[key] = extra
    separator = b"," if body[end - 1 : end] != b"{" else b""
    view = memoryview(body)
    return b"".join((view[:end], separator, extra, view[end:]))  # one copy of the body, not three


_EXTRA_FIELDS: dict[tuple[str, str], bytes] = {}


class OpenAIChatRenderer:
    """Core SSE bytes pass through; core chunks are serialised; ``[DONE]`` ends a normal stream."""

    __slots__ = ("_done_sent",)

    def __init__(self) -> None:
        self._done_sent = False

    def items(self, items: list[StreamItem]) -> bytes:
        if len(items) == 1:
            item = items[0]
            if isinstance(item, bytes):
                if item.endswith(DONE_EVENT):
                    self._done_sent = True
                return item
            return b"data: " + orjson.dumps(item) + b"\n\n"
        out = []
        for item in items:
            if isinstance(item, bytes):
                if item.endswith(DONE_EVENT):
                    self._done_sent = True
                out.append(item)
            else:
                out.append(b"data: " + orjson.dumps(item) + b"\n\n")
        return b"".join(out)

    def end(self, usage: Usage | None) -> bytes:
        if self._done_sent:
            return b""
        self._done_sent = True
        return DONE_EVENT

    def error(self, error: GatewayError) -> bytes:
        return b"data: " + error.to_body() + b"\n\n"


__all__ = ["OpenAIChatDialect", "OpenAIChatRenderer", "core_chunks", "model_list", "with_extra_fields"]
