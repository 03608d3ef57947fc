"""Gemini request bodies -> core bodies: ``generateContent``, ``countTokens``, ``embedContent``.

These run only when a request is *translated*: a Gemini request served by a Gemini provider passes
through untouched, so its fields reach Google even when the core cannot express them. Here every
field is either carried over or refused with a 400 that names it (``fields``).
"""

from __future__ import annotations

from typing import Any

from asbru_gateway.core.schema import ChatBody, EmbeddingsBody
from asbru_gateway.dialects.gemini import options
from asbru_gateway.dialects.gemini.contents import Conversation, system_message
from asbru_gateway.dialects.gemini.fields import JSON, array, fields, integer, string, untranslatable
from asbru_gateway.errors import InvalidRequestError

_GENERATE = frozenset(
    {
        "model",
        "contents",
        "systemInstruction",
        "tools",
        "toolConfig",
        "generationConfig",
        "safetySettings",
        "cachedContent",
    }
)
_COUNT = frozenset({"contents", "generateContentRequest", "model"})
_EMBED = frozenset({"model", "content", "taskType", "title", "outputDimensionality"})
_BATCH = frozenset({"requests"})
_EMBED_CONTENT = frozenset({"role", "parts"})
_TEXT_PART = frozenset({"text"})
_POLICY = ("safetySettings", "cachedContent")


def generate(body: JSON, *, model: str, stream: bool) -> ChatBody:
    """A ``GenerateContentRequest`` as a core chat body (400 for what cannot be expressed)."""
    request = fields(body, "", _GENERATE)
    for name in _POLICY:
        if name in request and request[name] != []:
            raise untranslatable(name, name)
    core: ChatBody = {"model": model, "messages": _messages(request)}
    if stream:
        core["stream"] = True
        core["stream_options"] = {"include_usage": True}  # Gemini reports usage on its last event
    if "tools" in request:
        declared = options.tools(request["tools"])
        if declared:
            core["tools"] = declared
    if "toolConfig" in request:
        options.tool_choice(request["toolConfig"], core)
    if "generationConfig" in request:
        options.generation(request["generationConfig"], core)
    return core


def _messages(request: JSON, where: str = "contents") -> list[Any]:
    conversation = Conversation()
    if "systemInstruction" in request:
        system = system_message(request["systemInstruction"])
        if system is not None:
            conversation.messages.append(system)
    for index, content in enumerate(array(request.get("contents"), where)):
        conversation.add(content, f"{where}[{index}]")
    if not any(message["role"] != "system" for message in conversation.messages):
        raise InvalidRequestError("contents must hold at least one part with content", param=where)
    return conversation.messages


def count(body: JSON, *, model: str) -> ChatBody:
    """A ``countTokens`` body (``contents``, or a whole ``generateContentRequest``) as the prompt to count."""
    request = fields(body, "", _COUNT)
    inner = request.get("generateContentRequest")
    if inner is not None:
        return generate(fields(inner, "generateContentRequest", _GENERATE), model=model, stream=False)
    return {"model": model, "messages": _messages(request)}


def embed(body: JSON, *, model: str) -> EmbeddingsBody:
    """``embedContent`` (one text: ``input`` a string) or ``batchEmbedContents`` (``input`` a list)."""
    if "requests" not in body:
        text, dimensions = _embed_request(body, "")
        core: EmbeddingsBody = {"model": model, "input": text}
        if dimensions is not None:
            core["dimensions"] = dimensions
        return core
    batch = fields(body, "", _BATCH)
    texts: list[str] = []
    sizes: set[int | None] = set()
    for index, item in enumerate(array(batch["requests"], "requests")):
        text, dimensions = _embed_request(item, f"requests[{index}]")
        texts.append(text)
        sizes.add(dimensions)
    if len(sizes) > 1:
        raise untranslatable("requests[].outputDimensionality", "mixedDimensions")
    core = {"model": model, "input": texts}
    dimensions = sizes.pop() if sizes else None
    if dimensions is not None:
        core["dimensions"] = dimensions
    return core


def _embed_request(value: Any, where: str) -> tuple[str, int | None]:
    request = fields(value, where, _EMBED)
    prefix = f"{where}." if where else ""
    for name in ("taskType", "title"):
        if name in request:
            raise untranslatable(prefix + name, name)
    content = fields(request.get("content"), prefix + "content", _EMBED_CONTENT)
    at = prefix + "content.parts"
    texts = [
        string(fields(part, f"{at}[{index}]", _TEXT_PART).get("text"), f"{at}[{index}].text")
        for index, part in enumerate(array(content.get("parts"), at))
    ]
    dimensions = request.get("outputDimensionality")
    size = None if dimensions is None else integer(dimensions, prefix + "outputDimensionality")
    return "\n".join(texts), size
