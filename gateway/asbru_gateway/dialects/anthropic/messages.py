"""Anthropic ``system`` and ``messages`` -> core messages (OpenAI chat shape).

What needs more than renaming:

- ``system`` (a string or text blocks) becomes the first message, role ``system``;
- a user turn's ``tool_result`` blocks become ``tool`` messages, in block order: text or images
  before a result become a user message before the tool message, those after it one after it;
- an assistant turn's ``tool_use`` blocks become ``tool_calls`` (``input`` serialised to the JSON
  string OpenAI carries), its text blocks the message's ``content``;
- images: a ``base64`` source becomes a ``data:`` URL, a ``url`` source stays a URL.

Block fields the core cannot carry (``cache_control``, ``citations``, document and server-tool
blocks, ``file`` image sources) raise ``UnsupportedError`` naming the field (``untranslatable``):
these only ever run when the request cannot pass through to an Anthropic provider, so the client
learns that the field would be lost instead of losing it. Two things are translated rather than refused:

- ``thinking`` / ``redacted_thinking`` blocks in earlier assistant turns are left out: they are
  Anthropic's signed record of its own reasoning, input no other provider takes (OpenAI's chat API
  does not take earlier reasoning either), and refusing them would break every conversation that
  started on Claude and falls back elsewhere;
- a ``tool_result`` with ``is_error: true`` has its content prefixed with ``Error:``, which is how
  the model learns the call failed when the field itself cannot travel.

Nothing here mutates the client's body: a fallback to an Anthropic provider still sends it as it was.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from asbru_gateway.core.schema import ContentPart, Message, ToolCall
from asbru_gateway.errors import InvalidRequestError, UnsupportedError

Block = Mapping[str, Any]

_TEXT_FIELDS = frozenset({"type", "text"})
_IMAGE_FIELDS = frozenset({"type", "source"})
_TOOL_USE_FIELDS = frozenset({"type", "id", "name", "input"})
_TOOL_RESULT_FIELDS = frozenset({"type", "tool_use_id", "content", "is_error"})
_REASONING_BLOCKS = frozenset({"thinking", "redacted_thinking"})


def core_messages(system: object, messages: list[Any]) -> list[Message]:
    """The whole conversation in core messages, system prompt first."""
    out: list[Message] = []
    if system is not None:
        prompt = _system(system)
        if prompt:
            out.append({"role": "system", "content": prompt})
    for index, message in enumerate(messages):
        param = f"messages[{index}]"
        content = message.get("content")
        if message.get("role") == "user":
            out.extend(_user(content, param))
        else:
            assistant = _assistant(content, param)
            if assistant is not None:
                out.append(assistant)
    return out


def _system(system: object) -> str | list[ContentPart]:
    if isinstance(system, str):
        return system
    if not isinstance(system, list):
        raise InvalidRequestError("system must be a string or a list of text blocks", param="system")
    parts: list[ContentPart] = []
    for index, block in enumerate(system):
        param = f"system[{index}]"
        if _kind(block, param) != "text":
            raise InvalidRequestError("system blocks must be text blocks", param=f"{param}.type")
        parts.append(_text_part(block, param))
    return _compact(parts)


# --- user turns -----------------------------------------------------------------------------------


def _user(content: object, param: str) -> list[Message]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    out: list[Message] = []
    pending: list[ContentPart] = []
    for kind, block, where in _typed_blocks(content, f"{param}.content"):
        if kind == "tool_result":
            if pending:
                out.append({"role": "user", "content": _compact(pending)})
                pending = []
            out.append(_tool_message(block, where))
        else:
            pending.append(_part(block, kind, where))
    if pending:
        out.append({"role": "user", "content": _compact(pending)})
    return out


def _part(block: Block, kind: str, param: str) -> ContentPart:
    if kind == "text":
        return _text_part(block, param)
    if kind == "image":
        return _image_part(block, param)
    raise untranslatable(f"content block type {kind!r}", f"{param}.type")


def _text_part(block: Block, param: str) -> ContentPart:
    _only(block, _TEXT_FIELDS, param)
    text = block.get("text")
    if not isinstance(text, str):
        raise InvalidRequestError("a text block needs a string text", param=f"{param}.text")
    return {"type": "text", "text": text}


def _image_part(block: Block, param: str) -> ContentPart:
    _only(block, _IMAGE_FIELDS, param)
    source = block.get("source")
    where = f"{param}.source"
    if not isinstance(source, dict):
        raise InvalidRequestError("an image block needs a source object", param=where)
    kind = source.get("type")
    if kind == "base64":
        media_type, data = source.get("media_type"), source.get("data")
        if not isinstance(media_type, str) or not isinstance(data, str) or not data:
            raise InvalidRequestError("a base64 image source needs media_type and data", param=where)
        return {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{data}"}}
    if kind == "url":
        url = source.get("url")
        if not isinstance(url, str) or not url:
            raise InvalidRequestError("a url image source needs a url", param=f"{where}.url")
        return {"type": "image_url", "image_url": {"url": url}}
    raise untranslatable(f"image source type {kind!r}", f"{where}.type")


def _tool_message(block: Block, param: str) -> Message:
    _only(block, _TOOL_RESULT_FIELDS, param)
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequestError("a tool_result block needs a tool_use_id", param=f"{param}.tool_use_id")
    content = block.get("content")
    where = f"{param}.content"
    parts: list[ContentPart]
    if content is None:
        parts = []
    elif isinstance(content, str):
        parts = [{"type": "text", "text": content}]
    else:
        parts = [_part(item, kind, place) for kind, item, place in _typed_blocks(content, where)]
    is_error = block.get("is_error")
    if is_error not in (None, False, True):
        raise InvalidRequestError("is_error must be a boolean", param=f"{param}.is_error")
    result = _tool_content(parts)
    if is_error:
        result = (
            "Error: " + result if isinstance(result, str) else [{"type": "text", "text": "Error:"}, *result]
        )
    return {"role": "tool", "tool_call_id": call_id, "content": result}


def _tool_content(parts: list[ContentPart]) -> str | list[ContentPart]:
    """Text-only results as one string (what every provider takes for a tool message)."""
    if all(part.get("type") == "text" for part in parts):
        return "\n".join(part.get("text", "") for part in parts)
    return parts


# --- assistant turns ------------------------------------------------------------------------------


def _assistant(content: object, param: str) -> Message | None:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[ToolCall] = []
    for kind, block, where in _typed_blocks(content, f"{param}.content"):
        if kind == "text":
            texts.append(_text_part(block, where)["text"])
        elif kind == "tool_use":
            calls.append(_tool_call(block, where))
        elif kind not in _REASONING_BLOCKS:
            raise untranslatable(f"assistant content block type {kind!r}", f"{where}.type")
    if not texts and not calls:
        return None
    message: Message = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_call(block: Block, param: str) -> ToolCall:
    _only(block, _TOOL_USE_FIELDS, param)
    call_id, name, arguments = block.get("id"), block.get("name"), block.get("input")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequestError("a tool_use block needs an id", param=f"{param}.id")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError("a tool_use block needs a name", param=f"{param}.name")
    if not isinstance(arguments, dict):
        raise InvalidRequestError("a tool_use block's input must be an object", param=f"{param}.input")
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": orjson.dumps(arguments).decode()},
    }


# --- shared ---------------------------------------------------------------------------------------


def _typed_blocks(content: object, param: str) -> Iterator[tuple[str, Block, str]]:
    """Each block of a ``content`` list as (type, block, its param path), checked to be a typed object."""
    if not isinstance(content, list):
        raise InvalidRequestError("content must be a string or a list of blocks", param=param)
    for index, block in enumerate(content):
        where = f"{param}[{index}]"
        yield _kind(block, where), block, where


def _kind(block: object, param: str) -> str:
    if not isinstance(block, dict):
        raise InvalidRequestError("a content block must be an object", param=param)
    kind = block.get("type")
    if not isinstance(kind, str):
        raise InvalidRequestError("a content block needs a type", param=f"{param}.type")
    return kind


def _only(block: Block, allowed: frozenset[str], param: str) -> None:
    """Refuse fields of a block that the core has no place for (``cache_control``, ``citations``...)."""
    for name, value in block.items():
        if name not in allowed and value is not None:
            raise untranslatable(f"{name!r}", f"{param}.{name}")


def untranslatable(what: str, param: str) -> UnsupportedError:
    """The 400 for input only Anthropic's API has, when the request must be translated: for a model
    of another family, or for a plugin that reads (or edits) the core request."""
    return UnsupportedError(
        f"{what} cannot be translated out of Anthropic's format: only an Anthropic model takes it",
        param=param,
    )


def _compact(parts: list[ContentPart]) -> str | list[ContentPart]:
    """One text part as a plain string (what every provider and plugin reads most easily)."""
    if len(parts) == 1 and parts[0].get("type") == "text":
        return parts[0].get("text", "")
    return parts
