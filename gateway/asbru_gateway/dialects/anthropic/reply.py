"""A core answer (``chat.completion``) -> an Anthropic ``message``, and the pieces the stream shares.

- ``content`` is a list of blocks: the reasoning (``reasoning_content``, as some OpenAI-compatible
  servers send it) as a ``thinking`` block, the text as a ``text`` block, each tool call as a
  ``tool_use`` block whose ``input`` is the parsed object (OpenAI carries it as a JSON string);
- ``stop_reason``: stop -> ``end_turn`` (``stop_sequence`` when the upstream says which of the
  client's stop sequences matched, as vLLM does in ``stop_reason``), length -> ``max_tokens``,
  tool_calls -> ``tool_use``, content_filter -> ``refusal``;
- ``usage``: Anthropic counts cached prompt tokens apart from ``input_tokens``; OpenAI includes them
  in ``prompt_tokens``, so they are split out again.

Rendering never raises (the response has started when it runs): a malformed core answer renders as
much of a message as it has.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from asbru_gateway.core.request import LLMRequest

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def stop_reason(finish_reason: object, matched: object, request: LLMRequest) -> tuple[str, str | None]:
    """Anthropic's ``(stop_reason, stop_sequence)`` for a core finish reason.

    ``matched`` is the choice's ``stop_reason`` where an upstream reports which stop string ended
    the answer; it counts only if it is one of the client's ``stop_sequences``.
    """
    reason = STOP_REASONS.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn"
    if reason == "end_turn" and isinstance(matched, str) and request.native is not None:
        sequences = request.native.get("stop_sequences")
        if isinstance(sequences, list) and matched in sequences:
            return "stop_sequence", matched
    return reason, None


def message_id(upstream_id: object, request: LLMRequest) -> str:
    return upstream_id if isinstance(upstream_id, str) and upstream_id else f"msg_{request.request_id}"


def usage_json(usage: object) -> dict[str, int]:
    """Core (OpenAI) usage -> Anthropic's, cached prompt tokens split out of the input count."""
    if not isinstance(usage, Mapping):
        return {"input_tokens": 0, "output_tokens": 0}
    prompt = _int(usage.get("prompt_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, Mapping) else 0
    out = {"input_tokens": max(prompt - cached, 0), "output_tokens": _int(usage.get("completion_tokens"))}
    if cached:
        out["cache_read_input_tokens"] = cached
    return out


def tool_input(arguments: object) -> dict[str, Any]:
    """A tool call's JSON-string arguments as the object Anthropic's ``input`` is.

    Arguments that are not a JSON object (a model cut off mid-call) render as ``{}``: the stop
    reason (``max_tokens``) already tells the client the call is incomplete.
    """
    if isinstance(arguments, dict):
        return arguments
    if isinstance(arguments, str) and arguments:
        try:
            parsed = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            return {}
        if isinstance(parsed, dict):
            return parsed
    return {}


def message(data: Mapping[str, Any], request: LLMRequest) -> dict[str, Any]:
    """The Anthropic message for a core ``chat.completion``."""
    choices = data.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    core_message = choice.get("message")
    if not isinstance(core_message, dict):
        core_message = {}
    reason, sequence = stop_reason(choice.get("finish_reason"), choice.get("stop_reason"), request)
    model = data.get("model")
    return {
        "id": message_id(data.get("id"), request),
        "type": "message",
        "role": "assistant",
        "model": model if isinstance(model, str) and model else request.model,
        "content": content_blocks(core_message),
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": usage_json(data.get("usage")),
    }


def content_blocks(core_message: Mapping[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    reasoning = core_message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        blocks.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = _text(core_message.get("content"))
    if text:
        blocks.append({"type": "text", "text": text})
    calls = core_message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        blocks.append(
            {
                "type": "tool_use",
                "id": str(call.get("id") or ""),
                "name": str(function.get("name") or ""),
                "input": tool_input(function.get("arguments")),
            }
        )
    return blocks


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
