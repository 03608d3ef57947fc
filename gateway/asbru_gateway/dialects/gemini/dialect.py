"""The Gemini API (google-genai): ``generateContent``, its stream, embeddings, token counts, models.

The model is in the path (``/models/{model}:generateContent``); the router hands it over decoded,
so a route name or ``provider/model`` works there too (google-genai sends ``openai/gpt-4o`` as
``/models/openai/gpt-4o:generateContent``, its slash unescaped). The API key may come as
``x-goog-api-key`` or ``?key=``: accepted, never required (``LLMRequest.credential`` reads it).

Bodies are kept as they came (``native``) so that a Gemini provider gets them untouched, with
every field the gateway does not model; ``to_core`` translates them only for another provider.
Parsing still checks the shape of what every path reads (``contents`` and each turn's ``role`` and
``parts``), so a malformed body is a 400 whoever serves it.

``streamGenerateContent`` is served as SSE, which is what google-genai asks for (``?alt=sse``).
Without ``alt=sse`` Google answers a JSON array written piece by piece; the gateway answers a 400
that says to add ``alt=sse`` instead of a stream in a shape no SDK reads.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, cast

import orjson

from asbru_gateway.core.formats import CORE, GEMINI_COUNT_TOKENS, GEMINI_EMBED, GEMINI_GENERATE
from asbru_gateway.core.reply import Reply
from asbru_gateway.core.request import CHAT, COUNT_TOKENS, EMBEDDINGS, LLMRequest, ToCore
from asbru_gateway.dialects.base import MODELS, Endpoint, Incoming, new_request, parse_object, pop_fallbacks
from asbru_gateway.dialects.gemini import render, to_core
from asbru_gateway.dialects.gemini.errors import error_body
from asbru_gateway.dialects.gemini.stream import GeminiStreamRenderer
from asbru_gateway.errors import GatewayError, InvalidRequestError

JSON = dict[str, Any]
_NATIVE = frozenset({GEMINI_GENERATE, GEMINI_EMBED, GEMINI_COUNT_TOKENS})
_BATCH_SUFFIX = ":batchEmbedContents"


class GeminiDialect:
    id = "gemini.generate_content"
    family = "gemini"
    stream_content_type = b"text/event-stream"
    endpoints: tuple[Endpoint, ...] = (
        Endpoint("POST", "/models/{model}:generateContent", CHAT, stream=False),
        Endpoint("POST", "/models/{model}:streamGenerateContent", CHAT, stream=True),
        Endpoint("POST", "/models/{model}:embedContent", EMBEDDINGS, stream=False),
        Endpoint("POST", "/models/{model}" + _BATCH_SUFFIX, EMBEDDINGS, stream=False),
        Endpoint("POST", "/models/{model}:countTokens", COUNT_TOKENS, stream=False),
        Endpoint("GET", "/models", MODELS),
    )

    def parse(self, incoming: Incoming) -> LLMRequest:
        body = parse_object(incoming.body)
        model = incoming.path_model
        if not model:
            raise InvalidRequestError("the path names no model", param="model")
        fallbacks = pop_fallbacks(body)
        endpoint = incoming.endpoint
        operation = endpoint.operation
        stream = bool(endpoint.stream)
        translate: Callable[[JSON], object]
        if operation == CHAT:
            check_contents(body.get("contents"))
            if stream and not _asks_sse(incoming.query):
                raise InvalidRequestError(
                    "streamGenerateContent is served as server-sent events only: add ?alt=sse", param="alt"
                )
            native_format, translate = GEMINI_GENERATE, partial(to_core.generate, model=model, stream=stream)
        elif operation == EMBEDDINGS:
            check_embed(body, batch=endpoint.path.endswith(_BATCH_SUFFIX))
            native_format, translate = GEMINI_EMBED, partial(to_core.embed, model=model)
        else:
            check_count(body)
            native_format, translate = GEMINI_COUNT_TOKENS, partial(to_core.count, model=model)
        return new_request(
            incoming,
            self.id,
            model=model,
            stream=stream,
            fallbacks=fallbacks,
            native=body,
            native_format=native_format,
            to_core=cast(ToCore, translate),  # the core TypedDicts are dicts at run time
        )

    def render(self, request: LLMRequest, reply: Reply) -> bytes:
        if reply.format in _NATIVE:
            return reply.body
        if reply.format != CORE:
            raise GatewayError(f"cannot render a {reply.format} answer as Gemini", code="bad_reply_format")
        if request.operation == CHAT:
            return orjson.dumps(render.generate_response(reply.data))
        if request.operation == EMBEDDINGS:
            batch = not isinstance(request.core.get("input"), str)
            return orjson.dumps(render.embed_response(reply.data, batch=batch))
        return orjson.dumps(render.count_response(reply.data))

    def stream(self, request: LLMRequest) -> GeminiStreamRenderer:
        return GeminiStreamRenderer(request.request_id)

    def error(self, error: GatewayError, request_id: str | None = None) -> tuple[int, bytes]:
        return error.status, error_body(error, request_id)

    def models(self, models: list[tuple[str, str]]) -> bytes:
        return orjson.dumps(render.model_list(models))


def _asks_sse(query: bytes) -> bool:
    return b"alt=sse" in query.split(b"&")


def check_contents(contents: Any, where: str = "contents") -> None:
    """The shape every path reads: a non-empty array of turns, each with a string role and parts."""
    if not isinstance(contents, list) or not contents:
        raise InvalidRequestError(f"{where} must be a non-empty array", param=where)
    for index, content in enumerate(contents):
        at = f"{where}[{index}]"
        if not isinstance(content, dict):
            raise InvalidRequestError(f"{at} must be an object", param=at)
        role = content.get("role")
        if role is not None and not isinstance(role, str):
            raise InvalidRequestError(f"{at}.role must be a string", param=f"{at}.role")
        if not isinstance(content.get("parts"), list):
            raise InvalidRequestError(f"{at}.parts must be an array", param=f"{at}.parts")


def check_count(body: JSON) -> None:
    inner = body.get("generateContentRequest", body.get("generate_content_request"))
    if inner is None:
        check_contents(body.get("contents"))
    elif isinstance(inner, dict):
        check_contents(inner.get("contents"), "generateContentRequest.contents")
    else:
        raise InvalidRequestError("generateContentRequest must be an object", param="generateContentRequest")


def check_embed(body: JSON, *, batch: bool) -> None:
    if batch:
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise InvalidRequestError("requests must be a non-empty array", param="requests")
        for index, request in enumerate(requests):
            if not isinstance(request, dict) or not isinstance(request.get("content"), dict):
                raise InvalidRequestError("each request needs a content object", param=f"requests[{index}]")
    elif not isinstance(body.get("content"), dict):
        raise InvalidRequestError("content must be an object", param="content")
