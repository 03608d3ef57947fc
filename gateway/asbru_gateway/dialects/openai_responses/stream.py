"""Core stream chunks -> the Responses streaming events, rendered as each batch arrives.

The event sequence is OpenAI's (every event numbered by ``sequence_number`` from 0):
``response.created``, ``response.in_progress``; for text ``response.output_item.added`` (a
``message``), ``response.content_part.added``, ``response.output_text.delta``...; for each tool call
``response.output_item.added`` (a ``function_call``), ``response.function_call_arguments.delta``...;
at the end each open item's ``...done`` events, then ``response.completed`` (or
``response.incomplete`` after a ``length`` stop) carrying the whole response with its usage. The
``openai`` SDK's stream helper rebuilds the response from these events and checks that they agree
(item ids, output indexes), so the renderer keeps that state.

An agent-mode tool step (a core chunk's ``mcp_call``) is an ``mcp_call`` output item, with the
events OpenAI's own remote MCP tool sends: when the gateway starts the call,
``response.output_item.added``, ``response.mcp_call_arguments.delta`` and ``.done`` (the arguments
in one piece: the call is complete when it starts), ``response.mcp_call.in_progress``; when it ends,
``response.mcp_call.completed`` (or ``.failed``) and ``response.output_item.done`` with the output
(or the error). A step must start a new item: text before it is closed first, and text after it
opens a new ``message`` item. A call a limit left unexecuted (``incomplete``) is added and done at once.

An error after the stream started is an ``error`` event followed by ``response.failed``. When the
provider passed the request through (an OpenAI provider answering in Responses events itself), its
events are forwarded unchanged, and an error is only the ``error`` event: the response that failed
is the upstream's, whose id this renderer never parsed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from asbru_gateway.core.reply import StreamItem
from asbru_gateway.core.schema import Chunk, ToolCall
from asbru_gateway.core.usage import Usage
from asbru_gateway.dialects.base import STEP_KEY, core_chunks, sse
from asbru_gateway.dialects.openai_responses import response as rs
from asbru_gateway.errors import GatewayError


@dataclass(slots=True)
class _Text:
    item_id: str
    output_index: int
    text: str = ""


@dataclass(slots=True)
class _Call:
    item_id: str
    output_index: int
    call_id: str
    name: str
    arguments: str = ""


@dataclass(slots=True)
class _Step:
    item_id: str
    output_index: int
    started: dict[str, Any]
    """The step as it started (what an item cut short is closed with)."""


class ResponsesStreamRenderer:
    """One streamed answer. ``passthrough``: the items are the upstream's own Responses events."""

    def __init__(self, request: dict[str, Any], *, passthrough: bool) -> None:
        self._request = request
        self._passthrough = passthrough
        self._response: dict[str, Any] | None = None
        self._sequence = 0
        self._text: _Text | None = None
        self._calls: dict[int, _Call] = {}
        self._steps: dict[str, _Step] = {}
        """Steps started and not yet ended, by the step's id."""
        self._done_items: dict[int, dict[str, Any]] = {}
        self._next_index = 0
        self._finish_reason: str | None = None
        self._usage: dict[str, Any] | None = None

    def items(self, items: list[StreamItem]) -> bytes:
        if self._passthrough:
            return b"".join(item for item in items if isinstance(item, bytes))
        out: list[bytes] = []
        for chunk in core_chunks(items):
            self._chunk(chunk, out)
        return b"".join(out)

    def end(self, usage: Usage | None) -> bytes:
        if self._passthrough:
            return b""  # the upstream's own response.completed was forwarded
        out: list[bytes] = []
        response = self._start(out, None)
        self._close_text(out)
        self._close_calls(out)
        self._close_steps(out)
        response["output"] = [self._done_items[index] for index in sorted(self._done_items)]
        rs.finish(response, self._finish_reason)
        if self._usage is not None:
            response["usage"] = self._usage
        elif usage is not None:
            response["usage"] = rs.usage_json(usage)
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        self._emit(out, kind, response=response)
        return b"".join(out)

    def error(self, error: GatewayError) -> bytes:
        out: list[bytes] = []
        response = None if self._passthrough else self._start(out, None)
        self._emit(out, "error", code=error.code or error.type, message=error.message, param=error.param)
        if response is not None:
            response["status"] = "failed"
            response["output"] = [self._done_items[index] for index in sorted(self._done_items)]
            response["error"] = {
                "code": _response_error_code(error),
                "message": error.message,
                "type": error.type,
                "param": error.param,
            }
            self._emit(out, "response.failed", response=response)
        return b"".join(out)

    # --- core chunks ------------------------------------------------------------------------------

    def _chunk(self, chunk: Chunk, out: list[bytes]) -> None:
        self._start(out, chunk.get("model"))
        step = chunk.get(STEP_KEY)
        if isinstance(step, dict):
            self._step(step, out)
            return
        usage = rs.usage_from_core(chunk.get("usage"))
        if usage is not None:
            self._usage = usage
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if isinstance(content, str) and content:
                self._text_delta(content, out)
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    self._call_delta(call, out)
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]

    def _start(self, out: list[bytes], model: object) -> dict[str, Any]:
        if self._response is None:
            name = model if isinstance(model, str) and model else str(self._request.get("model", ""))
            self._response = rs.skeleton(self._request, response_id=rs.new_id("resp_"), model=name)
            self._emit(out, "response.created", response=self._response)
            self._emit(out, "response.in_progress", response=self._response)
        return self._response

    def _text_delta(self, content: str, out: list[bytes]) -> None:
        text = self._text
        if text is None:
            text = self._text = _Text(rs.new_id("msg_"), self._take_index())
            item = rs.message_item(text.item_id, "", status="in_progress")
            self._emit(out, "response.output_item.added", output_index=text.output_index, item=item)
            self._emit(out, "response.content_part.added", **self._part(text), part=rs.text_part(""))
        text.text += content
        self._emit(out, "response.output_text.delta", **self._part(text), delta=content, logprobs=[])

    def _call_delta(self, delta: ToolCall, out: list[bytes]) -> None:
        index = delta.get("index", 0)
        function = cast("dict[str, Any]", delta.get("function") or {})
        call = self._calls.get(index)
        if call is None:
            self._close_text(out)  # a tool call follows the text it came with
            call_id = delta.get("id") or rs.new_id("call_")
            call = _Call(rs.new_id("fc_"), self._take_index(), call_id, function.get("name") or "")
            self._calls[index] = call
            item = rs.function_call_item(call.item_id, call.call_id, call.name, "", status="in_progress")
            self._emit(out, "response.output_item.added", output_index=call.output_index, item=item)
        elif function.get("name"):
            call.name = function["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            call.arguments += arguments
            self._emit(
                out,
                "response.function_call_arguments.delta",
                item_id=call.item_id,
                output_index=call.output_index,
                delta=arguments,
            )

    def _step(self, step: dict[str, Any], out: list[bytes]) -> None:
        key = str(step.get("id") or "")
        item = self._steps.pop(key, None)
        if item is None:
            self._close_text(out)
            item = _Step(rs.new_id("mcp_"), self._take_index(), step)
            self._add_step(item, out)
            if step.get("status") == "in_progress":
                self._steps[key] = item
                return
        ids = {"item_id": item.item_id, "output_index": item.output_index}
        ended = _STEP_ENDED.get(str(step.get("status")))
        if ended is not None:
            self._emit(out, ended, **ids)
        done = rs.mcp_call_item(item.item_id, step)
        self._done_items[item.output_index] = done
        self._emit(out, "response.output_item.done", output_index=item.output_index, item=done)

    def _add_step(self, item: _Step, out: list[bytes]) -> None:
        step = item.started
        added = rs.mcp_call_item(item.item_id, step, started=True)
        self._emit(out, "response.output_item.added", output_index=item.output_index, item=added)
        arguments = str(step.get("arguments") or "")
        ids = {"item_id": item.item_id, "output_index": item.output_index}
        if arguments:
            self._emit(out, "response.mcp_call_arguments.delta", **ids, delta=arguments)
        self._emit(out, "response.mcp_call_arguments.done", **ids, arguments=arguments)
        if step.get("status") == "in_progress":
            self._emit(out, "response.mcp_call.in_progress", **ids)

    # --- closing items ----------------------------------------------------------------------------

    def _close_text(self, out: list[bytes]) -> None:
        text, self._text = self._text, None
        if text is None:
            return
        self._emit(out, "response.output_text.done", **self._part(text), text=text.text, logprobs=[])
        self._emit(out, "response.content_part.done", **self._part(text), part=rs.text_part(text.text))
        item = rs.message_item(text.item_id, text.text)
        self._done_items[text.output_index] = item
        self._emit(out, "response.output_item.done", output_index=text.output_index, item=item)

    def _close_calls(self, out: list[bytes]) -> None:
        for call in sorted(self._calls.values(), key=lambda call: call.output_index):
            self._emit(
                out,
                "response.function_call_arguments.done",
                item_id=call.item_id,
                output_index=call.output_index,
                name=call.name,
                arguments=call.arguments,
            )
            item = rs.function_call_item(call.item_id, call.call_id, call.name, call.arguments)
            self._done_items[call.output_index] = item
            self._emit(out, "response.output_item.done", output_index=call.output_index, item=item)
        self._calls = {}

    def _close_steps(self, out: list[bytes]) -> None:
        """Steps that never ended (not in agent mode's streams, which end each step they start):
        done as ``incomplete``, so that the response completes with no item left open."""
        for item in list(self._steps.values()):
            self._step({**item.started, "status": "incomplete", "error": "the call did not end"}, out)

    # --- framing ----------------------------------------------------------------------------------

    def _take_index(self) -> int:
        index, self._next_index = self._next_index, self._next_index + 1
        return index

    @staticmethod
    def _part(text: _Text) -> dict[str, Any]:
        return {"item_id": text.item_id, "output_index": text.output_index, "content_index": 0}

    def _emit(self, out: list[bytes], kind: str, **fields: Any) -> None:
        out.append(sse({"type": kind, **fields, "sequence_number": self._sequence}, kind))
        self._sequence += 1


_STEP_ENDED = {"completed": "response.mcp_call.completed", "failed": "response.mcp_call.failed"}
"""The event that ends a step's call, by its status (an ``incomplete`` step has none: it never ran)."""


def _response_error_code(error: GatewayError) -> str:
    """``Response.error.code`` has its own vocabulary: a rate limit, a bad prompt, or a server error."""
    if error.status == 429:
        return "rate_limit_exceeded"
    if 400 <= error.status < 500:
        return "invalid_prompt"
    return "server_error"
