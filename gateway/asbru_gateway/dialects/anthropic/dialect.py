"""The Anthropic Messages dialect: ``POST /messages``, ``POST /messages/count_tokens``, ``GET /models``.

Requests are kept as the client sent them (``native``, format ``anthropic.messages`` or
``anthropic.count_tokens``): an Anthropic provider gets the body with only the model rewritten, so
``cache_control``, ``thinking``, ``metadata`` and beta fields reach it untouched. Any other provider
gets the core translation (``request.chat_to_core``), made only then. Answers in Anthropic's format
pass through unchanged; core answers are rendered as Anthropic messages and events (``reply``,
``stream``); errors in Anthropic's error shape (``errors``).

Both SDK auth styles (``x-api-key``, ``Authorization: Bearer``) and any ``anthropic-version`` are
accepted: the dialect reads neither (a governance plugin reads ``LLMRequest.credential``).
"""

from __future__ import annotations

import orjson

from asbru_gateway.core.formats import ANTHROPIC_COUNT_TOKENS, ANTHROPIC_MESSAGES
from asbru_gateway.core.reply import Reply
from asbru_gateway.core.request import CHAT, COUNT_TOKENS, LLMRequest
from asbru_gateway.dialects.anthropic.errors import error_body
from asbru_gateway.dialects.anthropic.reply import message
from asbru_gateway.dialects.anthropic.request import chat_to_core, check_messages
from asbru_gateway.dialects.anthropic.stream import AnthropicRenderer
from asbru_gateway.dialects.base import (
    MODELS,
    Endpoint,
    Incoming,
    parse_object,
    pop_fallbacks,
    require_model,
    stream_flag,
)
from asbru_gateway.errors import GatewayError

MODEL_CREATED_AT = "1970-01-01T00:00:00Z"
"""``created_at`` of listed models: routes and configured names have no release date."""

_PASSED_THROUGH = frozenset({ANTHROPIC_MESSAGES, ANTHROPIC_COUNT_TOKENS})


class AnthropicMessagesDialect:
    id = "anthropic.messages"
    family = "anthropic"
    stream_content_type = b"text/event-stream; charset=utf-8"
    endpoints: tuple[Endpoint, ...] = (
        Endpoint("POST", "/messages", CHAT),
        Endpoint("POST", "/messages/count_tokens", COUNT_TOKENS),
        Endpoint("GET", "/models", MODELS),
    )

    def parse(self, incoming: Incoming) -> LLMRequest:
        body = parse_object(incoming.body)
        model = require_model(body)
        fallbacks = pop_fallbacks(body)
        operation = incoming.endpoint.operation
        counting = operation == COUNT_TOKENS
        check_messages(body, needs_max_tokens=not counting)
        return LLMRequest(
            request_id=incoming.request_id,
            operation=operation,
            dialect=self.id,
            model=model,
            stream=False if counting else stream_flag(body),
            native=body,
            native_format=ANTHROPIC_COUNT_TOKENS if counting else ANTHROPIC_MESSAGES,
            to_core=chat_to_core,
            fallbacks=fallbacks,
            family=incoming.family,
            raw_headers=incoming.headers,
            query=incoming.query,
        )

    def render(self, request: LLMRequest, reply: Reply) -> bytes:
        if reply.format in _PASSED_THROUGH:
            return reply.body
        data = reply.data
        if request.operation == COUNT_TOKENS:  # the engine's local estimate
            return orjson.dumps({"input_tokens": data.get("input_tokens", 0)})
        return orjson.dumps(message(data, request))

    def stream(self, request: LLMRequest) -> AnthropicRenderer:
        return AnthropicRenderer(request)

    def error(self, error: GatewayError, request_id: str | None = None) -> tuple[int, bytes]:
        return error.status, error_body(error, request_id)

    def models(self, models: list[tuple[str, str]]) -> bytes:
        data = [
            {"type": "model", "id": name, "display_name": name, "created_at": MODEL_CREATED_AT}
            for name, _ in models
        ]
        return orjson.dumps(
            {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )
