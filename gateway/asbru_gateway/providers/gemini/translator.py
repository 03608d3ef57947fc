"""Google Gemini ``generateContent`` / ``streamGenerateContent`` / ``batchEmbedContents``.

The translator only wires the pieces together: URL and headers here, the request body in
``request.py`` (+ ``options.py``, ``schema.py``), answers in ``response.py`` and ``stream.py``,
errors in ``errors.py``, embeddings in ``embeddings.py``, pass-through of Gemini clients' own
bodies (generate, embed, count tokens) in ``native.py``. The API key travels in the
``x-goog-api-key`` header, never in the URL: URLs end up in logs and traces, headers do not.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from asbru_gateway.config.model import ProviderConfig
from asbru_gateway.core.reply import Reply
from asbru_gateway.providers.base import NO_HEADERS, MappedError, Target, UpstreamRequest
from asbru_gateway.providers.gemini.embeddings import embeddings_body, embeddings_result
from asbru_gateway.providers.gemini.errors import map_error
from asbru_gateway.providers.gemini.native import (
    NATIVE_FORMATS,
    GeminiPassthroughDecoder,
    native_call,
    native_reply,
)
from asbru_gateway.providers.gemini.request import build_body
from asbru_gateway.providers.gemini.response import chat_completion
from asbru_gateway.providers.gemini.stream import GeminiStreamDecoder


class GeminiTranslator:
    """Chat completions and embeddings between OpenAI format and the Gemini API (v1beta)."""

    __slots__ = ("_config", "_headers")
    native_formats = NATIVE_FORMATS

    def __init__(self, config: ProviderConfig) -> None:
        self._config = config
        self._headers: dict[str | None, dict[str, str]] = {}

    def headers(self, target: Target) -> dict[str, str]:
        """Request headers, built once per key and shared (``UpstreamRequest``: copy to change)."""
        headers = self._headers.get(target.api_key)
        if headers is None:
            headers = {"content-type": "application/json", **target.config.network.headers}
            if target.api_key:
                headers["x-goog-api-key"] = target.api_key
            self._headers[target.api_key] = headers
        return headers

    def url(self, target: Target, method: str) -> str:
        """``{base}/models/{model}:{method}``; a ``models/`` prefix in the model name is accepted."""
        return f"{target.base_url}/models/{quote(model_name(target), safe='-._~')}:{method}"

    def chat_request(self, request: dict[str, Any], target: Target, *, stream: bool) -> UpstreamRequest:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return UpstreamRequest(
            url=self.url(target, method), body=orjson.dumps(build_body(request)), headers=self.headers(target)
        )

    def chat_response(self, body: bytes, target: Target) -> Reply:
        return chat_completion(body, target.model)

    def stream_decoder(self, request: dict[str, Any], target: Target) -> GeminiStreamDecoder:
        options = request.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return GeminiStreamDecoder(model=target.model, include_usage=include_usage, created=int(time.time()))

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> MappedError:
        return map_error(status, body)

    def embeddings_request(self, request: dict[str, Any], target: Target) -> UpstreamRequest:
        body = embeddings_body(request, model_name(target))
        return UpstreamRequest(
            url=self.url(target, "batchEmbedContents"), body=orjson.dumps(body), headers=self.headers(target)
        )

    def embeddings_response(self, body: bytes, target: Target) -> Reply:
        return embeddings_result(body, target.model)

    def native_request(
        self,
        format: str,
        body: dict[str, Any],
        target: Target,
        *,
        stream: bool,
        extra_tools: list[Any],
        client_headers: Mapping[str, str] = NO_HEADERS,
    ) -> UpstreamRequest:
        method, payload = native_call(
            format, body, model_name(target), stream=stream, extra_tools=extra_tools
        )
        return UpstreamRequest(url=self.url(target, method), body=payload, headers=self.headers(target))

    def native_response(self, format: str, body: bytes, target: Target) -> Reply:
        return native_reply(format, body)

    def native_stream_decoder(
        self, format: str, body: dict[str, Any], target: Target
    ) -> GeminiPassthroughDecoder:
        return GeminiPassthroughDecoder()


def model_name(target: Target) -> str:
    return target.model.removeprefix("models/")
