"""A local token count, for ``count_tokens`` requests whose provider cannot count them itself.

It is an estimate and says so in the docs: about four characters of text per token (OpenAI's rule
of thumb for English), at least one token per message. Providers that count natively (Anthropic's
``count_tokens``, Gemini's ``countTokens``) are asked instead when the client's format is theirs.
"""

from __future__ import annotations

import math
from typing import Any

import orjson


def estimate_prompt_tokens(body: dict[str, Any]) -> int:
    total = 0
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            continue
        total += 1 + _text_tokens(message.get("content"))
        for call in message.get("tool_calls") or ():
            total += _text_tokens(orjson.dumps(call).decode())
    for tool in body.get("tools") or ():
        total += _text_tokens(orjson.dumps(tool).decode())
    return max(total, 1)


def _text_tokens(content: Any) -> int:
    if isinstance(content, str):
        return math.ceil(len(content) / 4)
    if isinstance(content, list):
        return sum(_text_tokens(part.get("text")) for part in content if isinstance(part, dict))
    return 0
