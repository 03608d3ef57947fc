"""Core answers -> Gemini answers: ``GenerateContentResponse``, embeddings, token counts, model lists.

A core choice is a Gemini candidate: its text is a text part, its reasoning (``reasoning_content``,
from providers that return it) a ``thought`` part, each tool call a ``functionCall`` part with
its arguments as an object and the core's call id (Gemini clients send it back with the
``functionResponse``, which keeps calls and results paired across providers). Usage becomes
``usageMetadata``, with reasoning tokens as ``thoughtsTokenCount`` (Gemini does not count them in
``candidatesTokenCount``).
"""

from __future__ import annotations

from typing import Any

import orjson

from asbru_gateway.core.usage import Usage

JSON = dict[str, Any]

FINISH_REASONS = {
    "stop": "STOP",
    "tool_calls": "STOP",
    "function_call": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
}
"""Core finish reasons -> Gemini's (a finished function call is a natural ``STOP`` in Gemini)."""
GENERATION_METHODS = [
    "generateContent",
    "streamGenerateContent",
    "countTokens",
    "embedContent",
    "batchEmbedContents",
]


def finish_reason(reason: Any) -> str:
    return FINISH_REASONS.get(reason, "OTHER") if isinstance(reason, str) else "OTHER"


def generate_response(completion: JSON) -> JSON:
    """A core ``chat.completion`` as a ``GenerateContentResponse``."""
    choices = completion.get("choices")
    candidates = [
        candidate(choice, position)
        for position, choice in enumerate(choices if isinstance(choices, list) else ())
        if isinstance(choice, dict)
    ]
    out: JSON = {"candidates": candidates}
    usage = completion.get("usage")
    if isinstance(usage, dict):
        out["usageMetadata"] = usage_metadata(usage)
    return with_identity(out, completion)


def with_identity(response: JSON, core: JSON) -> JSON:
    """``modelVersion`` and ``responseId`` from a core answer or chunk (``model``, ``id``)."""
    model, answer_id = core.get("model"), core.get("id")
    if isinstance(model, str) and model:
        response["modelVersion"] = model
    if isinstance(answer_id, str) and answer_id:
        response["responseId"] = answer_id
    return response


def candidate(choice: JSON, position: int) -> JSON:
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    parts = reasoning_parts(message.get("reasoning_content")) + text_parts(message.get("content"))
    for call in message.get("tool_calls") or ():
        if isinstance(call, dict):
            function = call.get("function")
            function = function if isinstance(function, dict) else {}
            parts.append(function_call(call.get("id"), function.get("name"), function.get("arguments")))
    out: JSON = {"content": {"role": "model", "parts": parts}, "index": _index(choice, position)}
    if choice.get("finish_reason") is not None:
        out["finishReason"] = finish_reason(choice["finish_reason"])
    return out


def _index(choice: JSON, position: int) -> int:
    index = choice.get("index", position)
    return index if isinstance(index, int) and not isinstance(index, bool) else position


def text_parts(content: Any) -> list[JSON]:
    """Core message content (a string, or parts of which text is kept) as Gemini text parts."""
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if isinstance(content, list):
        texts = [part.get("text") for part in content if isinstance(part, dict)]
        return [{"text": text} for text in texts if isinstance(text, str) and text]
    return []


def reasoning_parts(reasoning: Any) -> list[JSON]:
    return [{"text": reasoning, "thought": True}] if isinstance(reasoning, str) and reasoning else []


def function_call(call_id: Any, name: Any, arguments: Any) -> JSON:
    """A ``functionCall`` part; arguments that are not a JSON object are kept under ``arguments``."""
    args: Any
    try:
        args = orjson.loads(arguments) if isinstance(arguments, str) and arguments.strip() else {}
    except orjson.JSONDecodeError:
        args = None
    if not isinstance(args, dict):
        args = {"arguments": arguments}
    call: JSON = {"name": name if isinstance(name, str) else "", "args": args}
    if isinstance(call_id, str) and call_id:
        call = {"id": call_id, **call}
    return {"functionCall": call}


def usage_metadata(usage: JSON) -> JSON:
    """Core ``usage`` -> ``usageMetadata`` (reasoning and cached tokens as Gemini counts them)."""
    prompt = _count(usage.get("prompt_tokens"))
    completion = _count(usage.get("completion_tokens"))
    details = usage.get("completion_tokens_details")
    thoughts = _count(details.get("reasoning_tokens")) if isinstance(details, dict) else 0
    out: JSON = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": completion - thoughts,
        "totalTokenCount": _count(usage.get("total_tokens")) or prompt + completion,
    }
    if thoughts:
        out["thoughtsTokenCount"] = thoughts
    prompt_details = usage.get("prompt_tokens_details")
    cached = _count(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0
    if cached:
        out["cachedContentTokenCount"] = cached
    return out


def metadata_of(usage: Usage) -> JSON:
    return {
        "promptTokenCount": usage.prompt_tokens,
        "candidatesTokenCount": usage.completion_tokens,
        "totalTokenCount": usage.total_tokens,
    }


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def embed_response(answer: JSON, *, batch: bool) -> JSON:
    """A core (OpenAI) embeddings list as ``{"embedding": ...}``, or ``{"embeddings": [...]}`` (batch)."""
    data = answer.get("data")
    items = [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []
    items.sort(key=lambda item: item.get("index", 0) if isinstance(item.get("index"), int) else 0)
    embeddings = [{"values": item.get("embedding")} for item in items]
    if batch:
        return {"embeddings": embeddings}
    return {"embedding": embeddings[0] if embeddings else {"values": []}}


def count_response(answer: JSON) -> JSON:
    """The engine's local estimate (``{"input_tokens": N}``) as ``countTokens`` answers it."""
    return {"totalTokens": _count(answer.get("input_tokens"))}


def model_list(models: list[tuple[str, str]]) -> JSON:
    """``(id, owner)`` pairs as Gemini's ``ListModelsResponse`` (names carry the ``models/`` prefix)."""
    return {
        "models": [
            {
                "name": f"models/{name}",
                "displayName": name,
                "description": f"served by {owner} through Asbru",
                "supportedGenerationMethods": GENERATION_METHODS,
            }
            for name, owner in models
        ]
    }
