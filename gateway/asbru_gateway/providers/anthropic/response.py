"""Anthropic ``message`` -> OpenAI ``chat.completion``, plus the pieces the stream decoder shares.

Anthropic answers with a list of content blocks; OpenAI with one message whose ``content`` is the
text and whose ``tool_calls`` carry tool uses with their input as a JSON *string*. Usage differs too:
Anthropic counts cached prompt tokens separately, OpenAI's ``prompt_tokens`` includes them, so the
three input counters are summed (otherwise cached prompts would look free in token metrics).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from asbru_gateway.core.reply import Reply
from asbru_gateway.core.usage import Usage
from asbru_gateway.errors import UpstreamProtocolError

FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: object) -> str:
    """OpenAI's ``finish_reason`` for an Anthropic ``stop_reason`` (unknown ones read as a normal stop)."""
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


@dataclass(slots=True)
class TokenCounts:
    """Anthropic's usage counters, kept apart so a later ``message_delta`` can update some of them."""

    input: int = 0
    cache_creation: int = 0
    cache_read: int = 0
    output: int = 0

    def update(self, raw: Mapping[str, Any]) -> None:
        """Take the counters ``raw`` reports; absent or null ones keep their value (deltas are partial)."""
        self.input = _count(raw, "input_tokens", self.input)
        self.cache_creation = _count(raw, "cache_creation_input_tokens", self.cache_creation)
        self.cache_read = _count(raw, "cache_read_input_tokens", self.cache_read)
        self.output = _count(raw, "output_tokens", self.output)

    def usage(self) -> Usage:
        return Usage(
            prompt_tokens=self.input + self.cache_creation + self.cache_read, completion_tokens=self.output
        )

    def openai_json(self) -> dict[str, Any]:
        """The OpenAI ``usage`` object (``cached_tokens`` detail only when the prompt cache was read)."""
        usage = self.usage()
        out: dict[str, Any] = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        }
        if self.cache_read:
            out["prompt_tokens_details"] = {"cached_tokens": self.cache_read}
        return out


def _count(raw: Mapping[str, Any], key: str, default: int) -> int:
    value = raw.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def tool_call(block: Mapping[str, Any]) -> dict[str, Any]:
    """A ``tool_use`` block as an OpenAI tool call (``input`` object -> ``arguments`` JSON string)."""
    arguments = orjson.dumps(block.get("input") or {}).decode()
    return {
        "id": str(block.get("id") or ""),
        "type": "function",
        "function": {"name": str(block.get("name") or ""), "arguments": arguments},
    }


def chat_completion(body: bytes, *, fallback_model: str, created: int) -> Reply:
    """Translate a 2xx Anthropic body. ``created`` is the gateway's clock (Anthropic sends none)."""
    message = _load_message(body)
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in message["content"]:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif block.get("type") == "tool_use":
            tool_calls.append(tool_call(block))
    choice_message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": None,
    }
    if tool_calls:
        choice_message["tool_calls"] = tool_calls
    out: dict[str, Any] = {
        "id": str(message.get("id") or ""),
        "object": "chat.completion",
        "created": created,
        "model": message.get("model") or fallback_model,
        "choices": [
            {
                "index": 0,
                "message": choice_message,
                "logprobs": None,
                "finish_reason": finish_reason(message.get("stop_reason")),
            }
        ],
    }
    counts = counts_of(message)
    if counts is None:
        return Reply(data=out)
    out["usage"] = counts.openai_json()
    return Reply(data=out, usage=counts.usage())


def counts_of(message: Mapping[str, Any]) -> TokenCounts | None:
    """The token counts of an Anthropic ``message``, or None when it reports no usage."""
    raw = message.get("usage")
    if not isinstance(raw, dict):
        return None
    counts = TokenCounts()
    counts.update(raw)
    return counts


def _load_message(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError("upstream answered with a body that is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise UpstreamProtocolError("upstream answered with JSON that is not an Anthropic message")
    return data
