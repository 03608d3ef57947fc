"""What a request will probably use, reserved before the upstream call and settled after it.

The prompt is estimated at a quarter of the body's JSON length (chars / 4 is OpenAI's rule of
thumb for English; counting the JSON's keys and quotes too errs on the high side, which is the
safe side for a reservation). The completion is the request's own maximum (``max_tokens``,
``max_completion_tokens``, ``max_output_tokens``, Gemini's ``maxOutputTokens``), else the configured
default. Either way the actual usage replaces the estimate once the answer is in.
"""

from __future__ import annotations

from typing import Any

import orjson

from asbru_gateway.core.request import LLMRequest

_MAX_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


def estimate_tokens(request: LLMRequest, default_completion: int) -> tuple[int, int]:
    """(prompt tokens, completion tokens) to reserve for ``request``."""
    body = request.native if request.native is not None else request.core
    prompt = max(1, len(orjson.dumps(body)) // 4)
    return prompt, _max_completion(body, default_completion)


def _max_completion(body: dict[str, Any], default: int) -> int:
    for name in _MAX_FIELDS:
        value = body.get(name)
        if isinstance(value, int) and value > 0:
            return value
    config = body.get("generationConfig") or body.get("generation_config")
    if isinstance(config, dict):
        value = config.get("maxOutputTokens") or config.get("max_output_tokens")
        if isinstance(value, int) and value > 0:
            return value
    return default
