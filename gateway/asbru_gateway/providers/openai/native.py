"""OpenAI's own API takes the Responses and legacy Completions bodies as they are (pass-through).

Only provider type ``openai`` has this capability (the registry gives it ``OpenAINativeTranslator``):
OpenAI-compatible servers often lack ``/responses`` or ``/completions``, and Azure names them
differently, so for those the dialects translate to chat instead. The body is forwarded with the
model rewritten (and plugin tools added in the format's own shape); answers are read only for
usage and validity. Streams are forwarded event by event, each one JSON-checked first; the
upstream's error events are not forwarded (they may quote a key) but become the decoder's ``error``,
which the relay renders in the client's dialect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from asbru_gateway.core.formats import OPENAI_COMPLETIONS, OPENAI_RESPONSES
from asbru_gateway.core.reply import Reply, StreamItem
from asbru_gateway.core.schema import Tool
from asbru_gateway.core.usage import Usage
from asbru_gateway.errors import GatewayError, UnsupportedError, UpstreamError, UpstreamProtocolError
from asbru_gateway.providers.base import NO_HEADERS, Target, UpstreamRequest
from asbru_gateway.providers.openai.translator import OpenAITranslator, usage_of
from asbru_gateway.providers.sse import SSEBuffer, parse_event

_PATHS = {OPENAI_RESPONSES: "responses", OPENAI_COMPLETIONS: "completions"}


class OpenAINativeTranslator(OpenAITranslator):
    """The OpenAI translator plus pass-through of ``/responses`` and ``/completions`` bodies."""

    native_formats = frozenset(_PATHS)

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
        out = dict(body)
        out["model"] = target.model
        if stream:
            out["stream"] = True
        if format == OPENAI_RESPONSES:
            if extra_tools:
                out["tools"] = [*(body.get("tools") or ()), *map(responses_tool, extra_tools)]
        elif extra_tools:
            raise UnsupportedError("the legacy completions API has no tools to add", param="tools")
        elif stream and self._injects_usage(body):
            out["stream_options"] = {"include_usage": True}  # for token metrics; hidden again
        return UpstreamRequest(
            url=self.url(target, _PATHS[format]), body=orjson.dumps(out), headers=self.headers(target)
        )

    def native_response(self, format: str, body: bytes, target: Target) -> Reply:
        usage = responses_usage(body) if format == OPENAI_RESPONSES else usage_of(body)
        return Reply(body, format=format, usage=usage)

    def native_stream_decoder(
        self, format: str, body: dict[str, Any], target: Target
    ) -> ResponsesStreamDecoder | CompletionsStreamDecoder:
        if format == OPENAI_RESPONSES:
            return ResponsesStreamDecoder()
        return CompletionsStreamDecoder(hide_usage_chunk=self._injects_usage(body))


def responses_tool(tool: Tool) -> dict[str, Any]:
    """A core (chat-shaped) function tool in the Responses API's flat shape."""
    function = tool["function"]
    return {"type": "function", **function}


def responses_usage(body: bytes) -> Usage | None:
    """The usage of a ``Response`` object (raises on a body that is not JSON)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError("upstream answered with a body that is not JSON") from None
    return _usage(data.get("usage") if isinstance(data, dict) else None)


def _usage(usage: object) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    return Usage(int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0))


class _CheckedDecoder:
    """Splits SSE events, JSON-checks each, and forwards the kept ones in one block per read."""

    format: str

    def __init__(self) -> None:
        self._sse = SSEBuffer()
        self.done = False
        self.failed = False
        self.error: GatewayError | None = None
        self.usage: Usage | None = None

    def feed(self, data: bytes) -> list[StreamItem]:
        return self._forward(self._sse.raw_events(data))

    def finish(self) -> list[StreamItem]:
        rest = self._sse.rest()
        return self._forward([rest] if rest else [])

    def _forward(self, events: list[bytes]) -> list[StreamItem]:
        kept: list[bytes] = []
        for event in events:
            if self.failed:
                break  # nothing after an error reaches the client
            if self._keep(event):
                kept.append(event + b"\n\n")
        return [b"".join(kept)] if kept else []

    def _keep(self, event: bytes) -> bool:
        raise NotImplementedError

    def _payload(self, data: bytes) -> dict[str, Any] | None:
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            self._fail(UpstreamProtocolError("upstream sent a stream event that is not a JSON object"))
            return None
        return payload

    def _fail(self, error: GatewayError) -> None:
        self.failed = True
        self.error = error


class ResponsesStreamDecoder(_CheckedDecoder):
    """Responses streaming events; ends at ``response.completed`` or ``response.incomplete``."""

    format = OPENAI_RESPONSES

    def _keep(self, event: bytes) -> bool:
        parsed = parse_event(event)
        if not parsed.data:
            return False  # a comment or keep-alive
        payload = self._payload(parsed.data)
        if payload is None:
            return False
        kind = payload.get("type") or parsed.event
        if kind in ("response.completed", "response.incomplete"):
            response = payload.get("response")
            self.usage = _usage(response.get("usage") if isinstance(response, dict) else None)
            self.done = True
        elif kind == "response.failed":
            response = payload.get("response")
            self._fail(event_error(response.get("error") if isinstance(response, dict) else None))
            return False
        elif kind == "error":
            nested = payload.get("error")
            self._fail(event_error(nested if isinstance(nested, dict) else payload))
            return False
        return True


class CompletionsStreamDecoder(_CheckedDecoder):
    """``text_completion`` chunks ending with ``[DONE]``; a usage-only chunk we asked for is hidden."""

    format = OPENAI_COMPLETIONS

    def __init__(self, *, hide_usage_chunk: bool) -> None:
        super().__init__()
        self._hide_usage_chunk = hide_usage_chunk

    def _keep(self, event: bytes) -> bool:
        data = parse_event(event).data.strip()
        if not data:
            return False
        if data == b"[DONE]":
            self.done = True
            return True
        payload = self._payload(data)
        if payload is None:
            return False
        if isinstance(payload.get("error"), dict):
            self._fail(event_error(payload["error"]))
            return False
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self.usage = Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
            return not (self._hide_usage_chunk and not payload.get("choices"))
        return True


def event_error(error: object) -> UpstreamError:
    """An error reported inside a stream (``error`` event, ``response.failed``) as the gateway's."""
    fields = error if isinstance(error, dict) else {}
    code = fields.get("code")
    limited = code in ("rate_limit_exceeded", "rate_limit_error") or fields.get("type") == "rate_limit_error"
    return UpstreamError(
        str(fields.get("message") or "upstream stream failed"),
        status=429 if limited else 502,
        type="rate_limit_error" if limited else str(fields.get("type") or "api_error"),
        code=None if code is None else str(code),
        param=None if fields.get("param") is None else str(fields.get("param")),
        trigger="rate_limited" if limited else "server_error",
    )
