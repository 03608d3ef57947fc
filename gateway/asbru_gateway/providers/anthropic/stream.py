"""Anthropic Messages stream events -> core ``Chunk``s (``chat.completion.chunk`` shape), incrementally.

Anthropic's stream is typed events (``message_start``, per-block ``content_block_start`` /
``content_block_delta`` / ``content_block_stop``, ``message_delta`` with the stop reason and usage,
``message_stop``; ``ping`` keep-alives and ``error`` anywhere). OpenAI's is flat chunks of deltas.
The mapping keeps OpenAI's shape exactly, because clients (the openai SDK's accumulators) rely on it:

- the first chunk carries ``role: assistant``; every chunk shares the Anthropic message id and one
  ``created`` timestamp;
- a ``tool_use`` block becomes a ``tool_calls`` delta whose ``index`` counts tool calls only
  (Anthropic's block index also counts text blocks), first with id and name, then argument pieces;
- ``message_delta`` gives the ``finish_reason`` chunk; the usage-only chunk (``choices: []``) is
  sent only when the client asked (``stream_options.include_usage``), last, as OpenAI does. Usage is
  recorded on ``decoder.usage`` either way; ``message_stop`` ends the stream (``done``);
- an ``error`` event (or an event that is not JSON) sets ``error`` and ends the stream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from asbru_gateway.core.formats import CORE
from asbru_gateway.core.reply import StreamItem
from asbru_gateway.core.schema import Chunk
from asbru_gateway.core.usage import Usage
from asbru_gateway.errors import GatewayError, UpstreamProtocolError
from asbru_gateway.providers.anthropic.errors import stream_error
from asbru_gateway.providers.anthropic.response import TokenCounts, finish_reason
from asbru_gateway.providers.sse import SSEBuffer, SSEEvent, parse_event

Payload = dict[str, Any]
Items = list[StreamItem]


def wants_usage_chunk(request: Mapping[str, Any]) -> bool:
    """Whether the client asked for OpenAI's trailing usage chunk."""
    options = request.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


class AnthropicStreamDecoder:
    """One streamed answer's state: message id, tool-call numbering and token counts."""

    __slots__ = (
        "_counts",
        "_created",
        "_finished",
        "_id",
        "_include_usage",
        "_model",
        "_sse",
        "_tool_indexes",
        "done",
        "error",
        "failed",
        "usage",
    )
    format = CORE

    def __init__(self, *, model: str, created: int, include_usage: bool) -> None:
        self._sse = SSEBuffer()
        self._id = ""
        self._model = model
        self._created = created
        self._include_usage = include_usage
        self._tool_indexes: dict[object, int] = {}
        """Anthropic content block index -> OpenAI tool call index."""
        self._counts = TokenCounts()
        self._finished = False
        self.done = False
        self.failed = False
        self.error: GatewayError | None = None
        self.usage: Usage | None = None

    def feed(self, data: bytes) -> Items:
        out: Items = []
        for raw in self._sse.raw_events(data):
            if self.done or self.failed:
                break  # nothing may follow [DONE] or an error event
            out.extend(self._event(parse_event(raw)))
        return out

    def finish(self) -> Items:
        rest = self._sse.rest()
        if not rest or self.done or self.failed:
            return []
        return self._event(parse_event(rest))

    # --- dispatch -------------------------------------------------------------------------------

    def _event(self, event: SSEEvent) -> Items:
        if not event.data:  # comments and data-less events carry nothing
            return []
        try:
            payload = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return self._protocol_error("upstream sent a stream event that is not JSON")
        if not isinstance(payload, dict):
            return self._protocol_error("upstream sent a stream event that is not a JSON object")
        kind = payload.get("type") or event.event
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        return handler(self, payload) if handler is not None else []  # unknown types: ignored, as documented

    # --- handlers -------------------------------------------------------------------------------

    def _message_start(self, payload: Payload) -> Items:
        message = payload.get("message")
        if not isinstance(message, dict):
            return self._protocol_error("upstream sent message_start without a message")
        self._id = str(message.get("id") or self._id)
        self._model = str(message.get("model") or self._model)
        self._record_usage(message.get("usage"))
        return [self._chunk({"role": "assistant", "content": ""})]

    def _content_block_start(self, payload: Payload) -> Items:
        block = payload.get("content_block")
        if not isinstance(block, dict):
            return []
        if block.get("type") == "text":
            return self._text(block.get("text"))
        if block.get("type") != "tool_use":
            return []  # thinking, server tools, ...: nothing OpenAI clients can take
        tool_index = len(self._tool_indexes)
        self._tool_indexes[payload.get("index")] = tool_index
        call = {
            "index": tool_index,
            "id": str(block.get("id") or ""),
            "type": "function",
            "function": {"name": str(block.get("name") or ""), "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _content_block_delta(self, payload: Payload) -> Items:
        delta = payload.get("delta")
        if not isinstance(delta, dict):
            return []
        if delta.get("type") == "text_delta":
            return self._text(delta.get("text"))
        if delta.get("type") != "input_json_delta":
            return []
        tool_index = self._tool_indexes.get(payload.get("index"))
        piece = delta.get("partial_json")
        if tool_index is None or not isinstance(piece, str) or not piece:
            return []
        return [self._chunk({"tool_calls": [{"index": tool_index, "function": {"arguments": piece}}]})]

    def _message_delta(self, payload: Payload) -> Items:
        self._record_usage(payload.get("usage"))
        delta = payload.get("delta")
        stop_reason = delta.get("stop_reason") if isinstance(delta, dict) else None
        if stop_reason is None or self._finished:
            return []
        self._finished = True
        return [self._chunk({}, finish_reason=finish_reason(stop_reason))]

    def _message_stop(self, payload: Payload) -> Items:
        out: Items = []
        if self._include_usage:
            usage_chunk = self._envelope([])
            usage_chunk["usage"] = self._counts.openai_json()  # type: ignore[typeddict-item]
            out.append(usage_chunk)
        self.done = True
        return out

    def _error(self, payload: Payload) -> Items:
        self.failed = True
        self.error = stream_error(payload.get("error"))
        return []

    # --- helpers --------------------------------------------------------------------------------

    def _text(self, text: object) -> Items:
        return [self._chunk({"content": text})] if isinstance(text, str) and text else []

    def _record_usage(self, raw: object) -> None:
        if isinstance(raw, dict):
            self._counts.update(raw)
            self.usage = self._counts.usage()

    def _envelope(self, choices: list[Any]) -> Chunk:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }

    def _chunk(self, delta: Payload, *, finish_reason: str | None = None) -> Chunk:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self._envelope([choice])

    def _protocol_error(self, message: str) -> Items:
        """A stream we cannot read ends like an upstream error: ``error`` set, ``failed``."""
        self.failed = True
        self.error = UpstreamProtocolError(message)
        return []


_HANDLERS: dict[str, Callable[[AnthropicStreamDecoder, Payload], Items]] = {
    "message_start": AnthropicStreamDecoder._message_start,
    "content_block_start": AnthropicStreamDecoder._content_block_start,
    "content_block_delta": AnthropicStreamDecoder._content_block_delta,
    "message_delta": AnthropicStreamDecoder._message_delta,
    "message_stop": AnthropicStreamDecoder._message_stop,
    "error": AnthropicStreamDecoder._error,
}
"""Event type -> handler. ``ping`` and ``content_block_stop`` need no output; unknown types are skipped."""
