"""Streams in Anthropic's SSE events, batch by batch as they arrive.

Two kinds of input, told apart by their first bytes:

- Anthropic events (``event: ...``) from a provider that passed the request through: forwarded
  unchanged, the upstream's own ``message_stop`` included, so ``end`` adds nothing;
- core chunks (dicts, or OpenAI SSE bytes from an OpenAI-family provider): translated into
  ``message_start`` (+ ``ping``), one ``content_block_start`` / ``content_block_delta``\\* /
  ``content_block_stop`` run per block (``text_delta``, ``thinking_delta``, and for a tool call
  ``input_json_delta`` pieces as they come), and at the end ``message_delta`` (stop reason, usage)
  and ``message_stop``;
- agent-mode tool steps (a core chunk's ``mcp_call``): an ``mcp_tool_use`` block when the gateway
  starts a call, an ``mcp_tool_result`` block when it ends (Anthropic's MCP connector blocks).

Anthropic numbers blocks in one sequence for text and tool calls; OpenAI numbers tool calls on their
own. The renderer opens a new block whenever the kind of content changes, and remembers which block
each tool call got, so argument pieces always land in their own call's block.
"""

from __future__ import annotations

from typing import Any

from asbru_gateway.core.reply import StreamItem
from asbru_gateway.core.request import LLMRequest
from asbru_gateway.core.usage import Usage
from asbru_gateway.dialects.anthropic.errors import error_payload
from asbru_gateway.dialects.anthropic.reply import message_id, stop_reason, usage_json
from asbru_gateway.dialects.base import STEP_KEY, core_chunks, sse, step_input
from asbru_gateway.errors import GatewayError

NATIVE_PREFIX = b"event:"
"""Every event of a passed-through Anthropic stream starts so (the provider's decoder sees to it);
core SSE bytes never do."""

PING = sse({"type": "ping"}, "ping")

Out = list[bytes]


class AnthropicRenderer:
    """One streamed answer: which blocks are open and numbered, the stop reason, the usage seen."""

    __slots__ = (
        "_block",
        "_blocks",
        "_count",
        "_finish",
        "_matched",
        "_native",
        "_request",
        "_started",
        "_usage",
    )

    def __init__(self, request: LLMRequest) -> None:
        self._request = request
        self._native = False
        self._started = False
        self._block: tuple[str, object] | None = None
        """The open block: (kind, tool call index or None)."""
        self._blocks: dict[tuple[str, object], int] = {}
        """Every block opened so far -> its Anthropic index (a text block after a tool call is a
        new block: the key then points at the latest)."""
        self._count = 0
        self._finish: object = None
        self._matched: object = None
        self._usage: dict[str, Any] | None = None

    def items(self, items: list[StreamItem]) -> bytes:
        if len(items) == 1 and isinstance(items[0], bytes) and items[0].startswith(NATIVE_PREFIX):
            self._native = True
            return items[0]
        out: Out = []
        for item in items:
            if isinstance(item, bytes):
                if item.startswith(NATIVE_PREFIX):
                    self._native = True
                    out.append(item)
                    continue
                for chunk in core_chunks([item]):
                    self._chunk(chunk, out)
            else:
                self._chunk(item, out)
        return b"".join(out)

    def end(self, usage: Usage | None) -> bytes:
        if self._native:
            return b""  # the upstream's own message_delta and message_stop went through
        out: Out = []
        if not self._started:
            self._start({}, out)
        self._close(out)
        reason, sequence = stop_reason(self._finish, self._matched, self._request)
        counts = self._usage_counts(usage)
        delta = {"stop_reason": reason, "stop_sequence": sequence}
        out.append(sse({"type": "message_delta", "delta": delta, "usage": counts}, "message_delta"))
        out.append(sse({"type": "message_stop"}, "message_stop"))
        return b"".join(out)

    def error(self, error: GatewayError) -> bytes:
        return sse(error_payload(error, self._request.request_id), "error")

    # --- core chunks ------------------------------------------------------------------------------

    def _chunk(self, chunk: Any, out: Out) -> None:
        if not isinstance(chunk, dict):
            return
        if not self._started:
            self._start(chunk, out)
        step = chunk.get(STEP_KEY)
        if isinstance(step, dict):
            self._step(step, out)
            return
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage = usage
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return
        choice = choices[0]
        delta = choice.get("delta")
        if isinstance(delta, dict):
            self._delta(delta, out)
        if choice.get("finish_reason") is not None:
            self._finish = choice["finish_reason"]
            self._matched = choice.get("stop_reason")
            self._close(out)

    def _delta(self, delta: dict[str, Any], out: Out) -> None:
        reasoning = delta.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            index = self._open(("thinking", None), {"type": "thinking", "thinking": "", "signature": ""}, out)
            self._emit(index, {"type": "thinking_delta", "thinking": reasoning}, out)
        text = delta.get("content")
        if isinstance(text, str) and text:
            index = self._open(("text", None), {"type": "text", "text": ""}, out)
            self._emit(index, {"type": "text_delta", "text": text}, out)
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, dict):
                self._tool_call(call, out)

    def _tool_call(self, call: dict[str, Any], out: Out) -> None:
        key = ("tool_use", call.get("index", 0))
        function = call.get("function")
        if not isinstance(function, dict):
            function = {}
        index = self._blocks.get(key)
        if index is None or (call.get("id") and self._block != key):
            block = {
                "type": "tool_use",
                "id": str(call.get("id") or ""),
                "name": str(function.get("name") or ""),
                "input": {},
            }
            self._close(out)
            index = self._open(key, block, out)
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            self._emit(index, {"type": "input_json_delta", "partial_json": arguments}, out)

    def _step(self, step: dict[str, Any], out: Out) -> None:
        """An agent-mode tool step: Anthropic's MCP connector blocks, opened and closed at once."""
        self._close(out)
        if step.get("status") == "in_progress":
            block: dict[str, Any] = {
                "type": "mcp_tool_use",
                "id": str(step.get("id") or ""),
                "name": str(step.get("name") or ""),
                "server_name": str(step.get("server_label") or ""),
                "input": step_input(step),
            }
        else:
            failed = step.get("error") is not None
            text = step.get("error") if failed else step.get("output")
            block = {
                "type": "mcp_tool_result",
                "tool_use_id": str(step.get("id") or ""),
                "is_error": failed,
                "content": [{"type": "text", "text": str(text or "")}],
            }
        index = self._count
        self._count += 1
        out.append(
            sse(
                {"type": "content_block_start", "index": index, "content_block": block}, "content_block_start"
            )
        )
        out.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))

    # --- events -----------------------------------------------------------------------------------

    def _start(self, chunk: dict[str, Any], out: Out) -> None:
        self._started = True
        model = chunk.get("model")
        message: dict[str, Any] = {
            "id": message_id(chunk.get("id"), self._request),
            "type": "message",
            "role": "assistant",
            "model": model if isinstance(model, str) and model else self._request.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        out.append(sse({"type": "message_start", "message": message}, "message_start"))
        out.append(PING)

    def _open(self, key: tuple[str, object], block: dict[str, Any], out: Out) -> int:
        """The index of block ``key``, opening it (and closing the open one) if it is not open."""
        if self._block == key:
            return self._blocks[key]
        self._close(out)
        index = self._count
        self._count += 1
        self._blocks[key] = index
        self._block = key
        out.append(
            sse(
                {"type": "content_block_start", "index": index, "content_block": block}, "content_block_start"
            )
        )
        return index

    def _close(self, out: Out) -> None:
        if self._block is not None:
            index = self._blocks[self._block]
            self._block = None
            out.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))

    def _emit(self, index: int, delta: dict[str, Any], out: Out) -> None:
        out.append(
            sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")
        )

    def _usage_counts(self, usage: Usage | None) -> dict[str, int]:
        if self._usage is not None:
            return usage_json(self._usage)
        if usage is not None:
            return {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens}
        return {"input_tokens": 0, "output_tokens": 0}
