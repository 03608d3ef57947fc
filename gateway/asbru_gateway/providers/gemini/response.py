"""Gemini ``GenerateContentResponse`` -> OpenAI ``chat.completion``, plus the pieces streams share.

A Gemini candidate is an OpenAI choice: its text parts join into ``content``, its ``functionCall``
parts become ``tool_calls``. Gemini calls carry their arguments as an object and usually no id,
so arguments are serialised and ids are derived from the response (stable for one response, so a
retried translation gives the same answer). Parts marked ``thought`` are thought summaries, not
answer text, and are left out.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import orjson

from asbru_gateway.core.reply import Reply
from asbru_gateway.core.usage import Usage
from asbru_gateway.errors import UpstreamProtocolError

JSON = dict[str, Any]

_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
}
_UNFINISHED = frozenset({"", "FINISH_REASON_UNSPECIFIED"})


@dataclass(slots=True)
class FunctionCall:
    name: str
    args: Any
    id: str | None = None
    signature: str | None = None


def load_object(body: bytes) -> JSON:
    """The JSON object of an upstream body; anything else is a protocol error."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError("Gemini answered with a body that is not JSON") from None
    if not isinstance(data, dict):
        raise UpstreamProtocolError("Gemini answered with JSON that is not an object")
    return data


def response_key(data: JSON, raw: bytes) -> str:
    """Gemini's ``responseId``, or a digest of the raw answer: a stable base for generated ids."""
    response_id = data.get("responseId")
    if isinstance(response_id, str) and response_id:
        return response_id
    return hashlib.blake2b(raw, digest_size=12).hexdigest()


def call_id(key: str, choice: int, position: int) -> str:
    """A tool-call id for a Gemini call without one: unique in the response, stable across retries."""
    digest = hashlib.blake2b(f"{key}:{choice}:{position}".encode(), digest_size=12).hexdigest()
    return "call_" + digest


def split_parts(candidate: JSON) -> tuple[str, list[FunctionCall]]:
    """The answer text and function calls of one candidate (thought summaries skipped)."""
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    texts: list[str] = []
    calls: list[FunctionCall] = []
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict) or part.get("thought") is True:
            continue
        text = part.get("text")
        if isinstance(text, str):
            texts.append(text)
        call = part.get("functionCall")
        if isinstance(call, dict):
            calls.append(_function_call(call, part.get("thoughtSignature")))
    return "".join(texts), calls


def _function_call(call: JSON, signature: Any) -> FunctionCall:
    given_id = call.get("id")
    return FunctionCall(
        name=str(call.get("name") or ""),
        args=call.get("args") if call.get("args") is not None else {},
        id=given_id if isinstance(given_id, str) and given_id else None,
        signature=signature if isinstance(signature, str) and signature else None,
    )


def tool_call_json(call: FunctionCall, fallback_id: str, index: int | None = None) -> JSON:
    """One OpenAI tool call (``index`` only in stream deltas). The thought signature rides along in
    ``extra_content`` the way Google's OpenAI layer does it, so the next request can send it back."""
    out: JSON = {} if index is None else {"index": index}
    out["id"] = call.id or fallback_id
    out["type"] = "function"
    out["function"] = {"name": call.name, "arguments": orjson.dumps(call.args).decode()}
    if call.signature:
        out["extra_content"] = {"google": {"thought_signature": call.signature}}
    return out


def finish_reason(reason: Any, has_calls: bool) -> str:
    """Gemini finishReason -> OpenAI's; a natural stop after function calls is ``tool_calls``."""
    reason = reason if isinstance(reason, str) else ""
    if has_calls and (reason == "STOP" or reason in _UNFINISHED):
        return "tool_calls"
    return _FINISH_REASONS.get(reason, "stop")


def is_finished(reason: Any) -> bool:
    return isinstance(reason, str) and reason not in _UNFINISHED


def usage_of(metadata: Any) -> Usage | None:
    """``usageMetadata`` -> Usage; thinking tokens are billed as output, so they count as completion."""
    if not isinstance(metadata, dict):
        return None
    return Usage(
        prompt_tokens=_count(metadata, "promptTokenCount"),
        completion_tokens=_count(metadata, "candidatesTokenCount") + _count(metadata, "thoughtsTokenCount"),
    )


def usage_json(usage: Usage | None, metadata: Any) -> JSON:
    """The OpenAI ``usage`` object, with reasoning and cached-token details when Gemini gives them."""
    usage = usage or Usage()
    out: JSON = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    if isinstance(metadata, dict):
        if "thoughtsTokenCount" in metadata:
            out["completion_tokens_details"] = {"reasoning_tokens": _count(metadata, "thoughtsTokenCount")}
        if "cachedContentTokenCount" in metadata:
            out["prompt_tokens_details"] = {"cached_tokens": _count(metadata, "cachedContentTokenCount")}
    return out


def _count(metadata: JSON, key: str) -> int:
    value = metadata.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def is_blocked(data: JSON) -> bool:
    """A prompt Gemini refused outright: ``promptFeedback.blockReason`` and no candidates."""
    feedback = data.get("promptFeedback")
    return isinstance(feedback, dict) and bool(feedback.get("blockReason")) and not data.get("candidates")


def model_of(data: JSON, default: str) -> str:
    version = data.get("modelVersion")
    return version if isinstance(version, str) and version else default


def chat_completion(body: bytes, model: str) -> Reply:
    """A complete Gemini answer as an OpenAI ``chat.completion`` (``UpstreamProtocolError`` if not JSON)."""
    data = load_object(body)
    key = response_key(data, body)
    candidates = data.get("candidates")
    if isinstance(candidates, list) and candidates:
        choices = [
            _choice(candidate, position, key)
            for position, candidate in enumerate(candidates)
            if isinstance(candidate, dict)
        ]
    else:  # blocked prompt (content_filter) or an empty answer: still one choice, as clients expect
        reason = "content_filter" if is_blocked(data) else "stop"
        choices = [_message_choice(0, None, [], reason)]
    usage = usage_of(data.get("usageMetadata"))
    completion = {
        "id": "chatcmpl-" + key,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_of(data, model),
        "choices": choices,
        "usage": usage_json(usage, data.get("usageMetadata")),
    }
    return Reply(data=completion, usage=usage)


def _choice(candidate: JSON, position: int, key: str) -> JSON:
    index = candidate.get("index", position)
    index = index if isinstance(index, int) else position
    text, calls = split_parts(candidate)
    tool_calls = [tool_call_json(call, call_id(key, index, number)) for number, call in enumerate(calls)]
    reason = finish_reason(candidate.get("finishReason"), bool(calls))
    return _message_choice(index, text or None, tool_calls, reason)


def _message_choice(index: int, content: str | None, tool_calls: list[JSON], reason: str) -> JSON:
    message: JSON = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {"index": index, "message": message, "logprobs": None, "finish_reason": reason}
