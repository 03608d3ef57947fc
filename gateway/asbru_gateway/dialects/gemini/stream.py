"""Streams in Gemini's shape: ``data: {GenerateContentResponse}`` events, each with only the new parts.

A Gemini provider that passed the request through sends Gemini events already: they are forwarded
as they are. Which kind a stream carries is read once, from its first event: every event of a
stream comes from the one provider that served it, and a core event has ``choices`` where a
Gemini one has ``candidates``.

Core chunks are translated one by one, as they arrive:

- text deltas become text parts (reasoning deltas ``thought`` parts), one event per chunk;
- tool-call argument deltas are collected until the call is complete (a later call of the same
  choice starts, or the choice finishes), then sent as one ``functionCall``: Gemini clients get
  whole function calls, never fragments;
- the event that finishes a choice is held until the usage arrives (the core sends it in a chunk
  of its own, right after), so the last event carries both ``finishReason`` and ``usageMetadata``
  as Gemini's does. Gemini has no end marker: the stream simply ends.

An agent-mode tool step (a core chunk's ``mcp_call``) is an event of its own with a ``toolCall`` part
(the call started) or a ``toolResponse`` part (it ended): Gemini's parts for server-side tools.

An error after the start is a last event ``{"error": {...}}`` (google-genai raises it as an
``APIError`` with its ``code``), with the request id in its details.
"""

from __future__ import annotations

from typing import Any

import orjson

from asbru_gateway.core.reply import StreamItem
from asbru_gateway.core.usage import Usage
from asbru_gateway.dialects.base import STEP_KEY, core_chunks, step_input
from asbru_gateway.dialects.gemini.errors import error_body
from asbru_gateway.dialects.gemini.render import (
    finish_reason,
    function_call,
    metadata_of,
    reasoning_parts,
    text_parts,
    usage_metadata,
    with_identity,
)
from asbru_gateway.errors import GatewayError

JSON = dict[str, Any]


class _Call:
    """One tool call being assembled from deltas."""

    __slots__ = ("arguments", "id", "index", "name")

    def __init__(self, index: Any) -> None:
        self.index = index
        self.id = ""
        self.name = ""
        self.arguments = ""

    def add(self, delta: JSON) -> None:
        call_id = delta.get("id")
        if isinstance(call_id, str) and call_id and not self.id:
            self.id = call_id
        function = delta.get("function")
        if isinstance(function, dict):
            name, arguments = function.get("name"), function.get("arguments")
            if isinstance(name, str) and name and not self.name:
                self.name = name
            if isinstance(arguments, str):
                self.arguments += arguments

    def part(self) -> JSON:
        return function_call(self.id, self.name, self.arguments)


class GeminiStreamRenderer:
    __slots__ = ("_calls", "_held", "_identity", "_native", "_request_id", "_usage", "_usage_sent")

    def __init__(self, request_id: str) -> None:
        self._request_id = request_id
        self._native: bool | None = None
        """Decided by the first event: True when the provider passed Gemini events through."""
        self._calls: dict[int, _Call] = {}
        """Per choice index, the tool call being assembled."""
        self._held: JSON | None = None
        """The event that finished a choice, waiting for the usage that follows it."""
        self._usage: JSON | None = None
        self._usage_sent = False
        self._identity: JSON = {}

    def items(self, items: list[StreamItem]) -> bytes:
        out: list[bytes] = []
        for item in items:
            if isinstance(item, bytes):
                if self._native is None:
                    self._native = _is_gemini(item)
                if self._native:
                    out.append(item)
                    continue
                if self._native is None:
                    continue  # no event in it (comments, an end marker): nothing to show
                chunks: list[Any] = core_chunks([item])
            else:
                chunks = [item]
            for chunk in chunks:
                self._chunk(chunk, out)
        if self._held is not None and self._usage is not None:
            self._release(out)
        return b"".join(out)

    def end(self, usage: Usage | None) -> bytes:
        if self._native:
            return b""
        if self._usage is None and usage is not None:
            self._usage = metadata_of(usage)
        out: list[bytes] = []
        if self._held is None and self._usage is not None and not self._usage_sent:
            self._held = with_identity({}, self._identity)
        self._release(out)
        return b"".join(out)

    def error(self, error: GatewayError) -> bytes:
        out: list[bytes] = []
        self._release(out)
        out.append(b"data: " + error_body(error, self._request_id) + b"\n\n")
        return b"".join(out)

    def _chunk(self, chunk: JSON, out: list[bytes]) -> None:
        if not self._identity:
            self._identity = {"model": chunk.get("model"), "id": chunk.get("id")}
        step = chunk.get(STEP_KEY)
        if isinstance(step, dict):
            self._release(out)
            candidate = {"content": {"role": "model", "parts": [step_part(step)]}, "index": 0}
            out.append(_event(with_identity({"candidates": [candidate]}, self._identity)))
            return
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage = usage_metadata(usage)
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if isinstance(choice, dict):
                self._choice(choice, out)

    def _choice(self, choice: JSON, out: list[bytes]) -> None:
        index = choice.get("index", 0)
        index = index if isinstance(index, int) else 0
        delta = choice.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        parts = reasoning_parts(delta.get("reasoning_content")) + text_parts(delta.get("content"))
        for call_delta in delta.get("tool_calls") or ():
            if isinstance(call_delta, dict):
                parts.extend(self._call_delta(index, call_delta))
        reason = choice.get("finish_reason")
        if reason is not None:
            call = self._calls.pop(index, None)
            if call is not None:
                parts.append(call.part())
        if not parts and reason is None:
            return
        candidate: JSON = {"content": {"role": "model", "parts": parts}, "index": index}
        event = with_identity({"candidates": [candidate]}, self._identity)
        self._release(out)
        if reason is None:
            out.append(_event(event))
            return
        candidate["finishReason"] = finish_reason(reason)
        self._held = event

    def _call_delta(self, index: int, delta: JSON) -> list[JSON]:
        """The calls this delta completes (the previous one, when a new call starts)."""
        done: list[JSON] = []
        current = self._calls.get(index)
        if current is None or delta.get("index", current.index) != current.index:
            if current is not None:
                done.append(current.part())
            current = self._calls[index] = _Call(delta.get("index"))
        current.add(delta)
        return done

    def _release(self, out: list[bytes]) -> None:
        """Send the held event, with the usage if it is known by now (sent once)."""
        held = self._held
        if held is None:
            return
        if self._usage is not None and not self._usage_sent:
            held["usageMetadata"] = self._usage
            self._usage_sent = True
        out.append(_event(held))
        self._held = None


def step_part(step: JSON) -> JSON:
    """An agent-mode tool step as Gemini's server-side tool parts: ``toolCall`` when the gateway
    starts a call, ``toolResponse`` when it ends (the client is not to execute either); which MCP
    server and tool in ``partMetadata``."""
    call_id = str(step.get("id") or "")
    metadata = {"mcp_call": {"server_label": step.get("server_label"), "name": step.get("name")}}
    if step.get("status") == "in_progress":
        call = {"id": call_id, "toolType": "TOOL_TYPE_UNSPECIFIED", "args": step_input(step)}
        return {"toolCall": call, "partMetadata": metadata}
    result = {"error": step["error"]} if step.get("error") is not None else {"output": step.get("output")}
    response = {"id": call_id, "toolType": "TOOL_TYPE_UNSPECIFIED", "response": result}
    return {"toolResponse": response, "partMetadata": metadata}


def _event(response: JSON) -> bytes:
    return b"data: " + orjson.dumps(response) + b"\n\n"


def _is_gemini(item: bytes) -> bool | None:
    """Whether these SSE bytes are Gemini events (None: no JSON event in them to tell by)."""
    for event in item.split(b"\n\n"):
        start = event.find(b"data:")
        if start < 0:
            continue
        try:
            data = orjson.loads(event[start + 5 :])
        except orjson.JSONDecodeError:
            continue
        if isinstance(data, dict):
            return "choices" not in data and data.get("object") != "chat.completion.chunk"
    return None
