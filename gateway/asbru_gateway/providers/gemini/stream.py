"""Gemini ``streamGenerateContent?alt=sse`` -> core ``Chunk``s (``chat.completion.chunk`` shape).

Every Gemini SSE ``data:`` is a whole ``GenerateContentResponse`` holding the *new* parts of each
candidate, so each event translates on its own: text parts become content deltas, a
``functionCall`` part becomes one complete tool-call delta (Gemini never splits a call),
``finishReason`` becomes the choice's final chunk. Gemini sends no end marker: the stream ends
normally when the connection closes after every candidate reported a finish reason, and only then
is the usage chunk (if asked for) emitted and ``done`` set. A close before that is a broken stream.
"""

from __future__ import annotations

from typing import Any

import orjson

from asbru_gateway.core.formats import CORE
from asbru_gateway.core.reply import StreamItem
from asbru_gateway.core.schema import Chunk
from asbru_gateway.core.usage import Usage
from asbru_gateway.errors import GatewayError, UpstreamError
from asbru_gateway.providers.gemini.errors import error_from_object, in_stream_status
from asbru_gateway.providers.gemini.response import (
    call_id,
    finish_reason,
    is_blocked,
    is_finished,
    model_of,
    response_key,
    split_parts,
    tool_call_json,
    usage_json,
    usage_of,
)
from asbru_gateway.providers.sse import SSEBuffer, parse_event

JSON = dict[str, Any]
Items = list[StreamItem]


class GeminiStreamDecoder:
    """One streamed Gemini answer, decoded incrementally (see ``StreamDecoder`` in providers/base.py)."""

    __slots__ = (
        "_calls",
        "_created",
        "_finished",
        "_id",
        "_include_usage",
        "_key",
        "_model",
        "_sse",
        "_started",
        "_usage_metadata",
        "done",
        "error",
        "failed",
        "usage",
    )
    format = CORE

    def __init__(self, *, model: str, include_usage: bool, created: int) -> None:
        self._sse = SSEBuffer()
        self.done = False
        self.failed = False
        self.error: GatewayError | None = None
        self.usage: Usage | None = None
        self._model = model
        self._include_usage = include_usage
        self._created = created
        self._id = ""
        self._key = ""
        self._usage_metadata: Any = None
        self._started: set[int] = set()
        self._finished: set[int] = set()
        self._calls: dict[int, int] = {}
        """Tool calls emitted so far per choice: the next call's ``index``."""

    def feed(self, data: bytes) -> Items:
        if self.done or self.failed:
            return []
        return self._translate(self._sse.raw_events(data))

    def _translate(self, events: list[bytes]) -> Items:
        out: Items = []
        for raw in events:
            out.extend(self._event(raw))
            if self.failed:  # nothing after an error event reaches the client
                break
        return out

    def finish(self) -> Items:
        if self.done or self.failed:
            return []
        rest = self._sse.rest()
        out = self._event(rest) if rest else []
        if self.failed or not self._finished or not self._started <= self._finished:
            return out  # no finish reason for some choice: broken stream, the gateway reports it
        if self._include_usage:
            usage = {"choices": [], "usage": usage_json(self.usage, self._usage_metadata)}
            out.append(self._envelope(usage))
        self.done = True
        return out

    def _event(self, raw: bytes) -> Items:
        payload = parse_event(raw).data.strip()
        if not payload and raw.lstrip().startswith(b"{"):
            payload = raw  # an error Google wrote as bare JSON, outside SSE framing
        if not payload or payload == b"[DONE]":
            return []  # comments, keep-alives
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            chunk = None
        if not isinstance(chunk, dict):
            return self._fail("Gemini sent a stream event that is not a JSON object", "bad_upstream_response")
        error = chunk.get("error")
        if isinstance(error, dict):
            mapped = error_from_object(error, in_stream_status(error))
            return self._fail(mapped.message, mapped.code, mapped.type)
        return self._chunk(chunk, payload)

    def _fail(self, message: str, code: str | None, kind: str = "api_error") -> Items:
        self.failed = True
        self.error = UpstreamError(message, status=502, type=kind, code=code, trigger="server_error")
        return []

    def _chunk(self, chunk: JSON, payload: bytes) -> Items:
        if not self._id:  # the first chunk names the answer; later ones repeat it
            self._key = response_key(chunk, payload)
            self._id = "chatcmpl-" + self._key
            self._model = model_of(chunk, self._model)
        if isinstance(chunk.get("usageMetadata"), dict):
            self._usage_metadata = chunk["usageMetadata"]
            self.usage = usage_of(self._usage_metadata)
        candidates = chunk.get("candidates")
        if is_blocked(chunk):
            return [*self._start(0), self._finish(0, "content_filter")]
        out: Items = []
        for candidate in candidates if isinstance(candidates, list) else ():
            if isinstance(candidate, dict):
                out.extend(self._candidate(candidate))
        return out

    def _candidate(self, candidate: JSON) -> Items:
        index = candidate.get("index", 0)
        index = index if isinstance(index, int) else 0
        out = self._start(index)
        text, calls = split_parts(candidate)
        if text:
            out.append(self._delta(index, {"content": text}))
        if calls:
            first = self._calls.get(index, 0)
            self._calls[index] = first + len(calls)
            deltas = [
                tool_call_json(call, call_id(self._key, index, first + number), index=first + number)
                for number, call in enumerate(calls)
            ]
            out.append(self._delta(index, {"tool_calls": deltas}))
        reason = candidate.get("finishReason")
        if is_finished(reason) and index not in self._finished:
            out.append(self._finish(index, finish_reason(reason, index in self._calls)))
        return out

    def _start(self, index: int) -> Items:
        """The opening chunk of a choice (role only), as OpenAI sends it, once per choice."""
        if index in self._started:
            return []
        self._started.add(index)
        return [self._delta(index, {"role": "assistant", "content": ""})]

    def _finish(self, index: int, reason: str) -> Chunk:
        self._finished.add(index)
        return self._delta(index, {}, reason)

    def _delta(self, index: int, delta: JSON, reason: str | None = None) -> Chunk:
        return self._envelope({"choices": [{"index": index, "delta": delta, "finish_reason": reason}]})

    def _envelope(self, fields: JSON) -> Chunk:
        chunk: JSON = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            **fields,
        }
        return chunk  # type: ignore[return-value]  # built from the core chunk fields above
