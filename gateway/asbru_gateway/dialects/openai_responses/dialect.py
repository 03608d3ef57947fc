"""The OpenAI Responses dialect: ``POST /responses``, JSON and the Responses streaming events.

The gateway is stateless, so the request body is kept as it came (``native``): an OpenAI provider
takes it unchanged (stored state such as ``previous_response_id`` included, and every field the
gateway does not model), and any other provider gets the core translation (``request.py``), which
is a 400 naming the field for whatever needs OpenAI's stored state or has no core equivalent.
"""

from __future__ import annotations

from typing import Any

import orjson

from asbru_gateway.core.formats import OPENAI_RESPONSES
from asbru_gateway.core.reply import Reply
from asbru_gateway.core.request import CHAT, LLMRequest
from asbru_gateway.dialects.base import (
    Endpoint,
    Incoming,
    native_request,
    parse_object,
    require_model,
    stream_flag,
)
from asbru_gateway.dialects.openai_chat import model_list, with_extra_fields
from asbru_gateway.dialects.openai_responses import response as rs
from asbru_gateway.dialects.openai_responses.request import to_core
from asbru_gateway.dialects.openai_responses.stream import ResponsesStreamRenderer
from asbru_gateway.errors import GatewayError


class OpenAIResponsesDialect:
    id = "openai.responses"
    family = "openai"
    stream_content_type = b"text/event-stream; charset=utf-8"
    endpoints: tuple[Endpoint, ...] = (Endpoint("POST", "/responses", CHAT),)

    def parse(self, incoming: Incoming) -> LLMRequest:
        body = parse_object(incoming.body)
        if incoming.path_model is not None:  # Azure-style /openai/deployments/{id}/responses
            body["model"] = incoming.path_model
        return native_request(
            incoming,
            body,
            dialect=self.id,
            model=require_model(body),
            stream=stream_flag(body),
            native_format=OPENAI_RESPONSES,
            to_core=to_core,
        )

    def render(self, request: LLMRequest, reply: Reply) -> bytes:
        if reply.format == OPENAI_RESPONSES:
            body = reply.body
        else:
            body = orjson.dumps(rs.from_completion(reply.data, _settings(request), reply.steps))
        return with_extra_fields(body, request)

    def stream(self, request: LLMRequest) -> ResponsesStreamRenderer:
        return ResponsesStreamRenderer(_settings(request), passthrough=request.passthrough)

    def error(self, error: GatewayError, request_id: str | None = None) -> tuple[int, bytes]:
        return error.status, error.to_body()

    def models(self, models: list[tuple[str, str]]) -> bytes:
        return model_list(models)


def _settings(request: LLMRequest) -> dict[str, Any]:
    """What a rendered ``Response`` echoes: the client's body, even when it was translated (agent mode)."""
    return request.client_body or {"model": request.model}
