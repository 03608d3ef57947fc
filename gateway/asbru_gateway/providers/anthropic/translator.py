"""Anthropic Messages API (``POST {base_url}/messages``) behind the OpenAI chat completions contract.

A pure translator (see ``providers/base.py``): the request, response, stream and error mappings live
in ``request.py``, ``response.py``, ``stream.py`` and ``errors.py``, the pass-through of Anthropic's
own format (``NativeTranslator``: Messages and count_tokens) in ``native.py``; this class only wires
them to the protocols and owns the per-provider constants (headers, API version). Anthropic has no
embeddings API, so this translator deliberately lacks the embeddings capability.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from asbru_gateway.config.model import ProviderConfig
from asbru_gateway.core.reply import Reply
from asbru_gateway.providers.anthropic.errors import anthropic_error
from asbru_gateway.providers.anthropic.native import (
    NATIVE_FORMATS,
    PATHS,
    AnthropicPassthroughDecoder,
    native_body,
    native_reply,
)
from asbru_gateway.providers.anthropic.request import build_body
from asbru_gateway.providers.anthropic.response import chat_completion
from asbru_gateway.providers.anthropic.stream import AnthropicStreamDecoder, wants_usage_chunk
from asbru_gateway.providers.base import NO_HEADERS, MappedError, Target, UpstreamRequest

DEFAULT_API_VERSION = "2023-06-01"
"""The ``anthropic-version`` header when the provider config sets no ``api_version``."""


class AnthropicTranslator:
    """Chat completions to and from Anthropic's Messages API."""

    __slots__ = ("_clock", "_headers")

    def __init__(self, config: ProviderConfig, *, clock: Callable[[], float] = time.time) -> None:
        """``clock`` stamps ``created`` (Anthropic sends no timestamp); tests pin it."""
        self._clock = clock
        # Built once per config: everything but the key. Configured extra headers come last so an
        # operator can add anthropic-beta (credential headers are refused by the config model).
        self._headers = {
            "content-type": "application/json",
            "anthropic-version": config.api_version or DEFAULT_API_VERSION,
            **{name.lower(): value for name, value in config.network.headers.items()},
        }

    native_formats = NATIVE_FORMATS

    def _upstream(self, path: str, body: bytes, target: Target) -> UpstreamRequest:
        headers = dict(self._headers)
        if target.api_key:
            headers["x-api-key"] = target.api_key
        return UpstreamRequest(url=f"{target.base_url}/{path}", body=body, headers=headers)

    def chat_request(self, request: dict[str, Any], target: Target, *, stream: bool) -> UpstreamRequest:
        body = build_body(request, target.model, stream=stream)
        return self._upstream("messages", orjson.dumps(body), target)

    def chat_response(self, body: bytes, target: Target) -> Reply:
        return chat_completion(body, fallback_model=target.model, created=int(self._clock()))

    def stream_decoder(self, request: dict[str, Any], target: Target) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder(
            model=target.model, created=int(self._clock()), include_usage=wants_usage_chunk(request)
        )

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> MappedError:
        return anthropic_error(status, body)

    # --- pass-through (NativeTranslator) ----------------------------------------------------------

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
        data = native_body(format, body, target.model, stream=stream, extra_tools=extra_tools)
        upstream = self._upstream(PATHS[format], data, target)
        beta = client_headers.get("anthropic-beta")
        if beta:  # the client's beta features come with its beta fields, which pass through
            configured = upstream.headers.get("anthropic-beta")
            upstream.headers["anthropic-beta"] = f"{configured},{beta}" if configured else beta
        return upstream

    def native_response(self, format: str, body: bytes, target: Target) -> Reply:
        return native_reply(format, body)

    def native_stream_decoder(
        self, format: str, body: dict[str, Any], target: Target
    ) -> AnthropicPassthroughDecoder:
        return AnthropicPassthroughDecoder()
