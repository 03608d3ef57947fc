"""Responses ``instructions`` and ``input`` -> core chat messages.

The Responses API spells a conversation as a list of items rather than messages: ``message`` items
(role + content parts ``input_text``/``input_image``/``input_file``/``output_text``), and tool
traffic as items of their own (``function_call`` from the model, ``function_call_output`` from the
client). Chat has no separate tool-call item, so consecutive function calls join the assistant
message before them (that is one model turn in both APIs).

Items that only mean something to OpenAI's own store (``item_reference``, ``reasoning`` items with
their encrypted state) or to its built-in tools (``web_search_call``, ``computer_call``, ...) cannot
be expressed in the core: they get a 400 naming the item, never a silent drop. A request carrying
them still works against an OpenAI provider, which takes the body as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asbru_gateway.core.schema import ContentPart, Message, ToolCall
from asbru_gateway.errors import InvalidRequestError, UnsupportedError

_ROLES = frozenset({"user", "assistant", "system", "developer"})
_STATEFUL_ITEMS = frozenset({"item_reference", "reasoning", "compaction"})
_ASSISTANT_TEXT = {"output_text": "text", "input_text": "text", "refusal": "refusal"}
"""Part types an earlier answer may hold, and the field with their text."""


def messages(body: dict[str, Any]) -> list[Message]:
    """``instructions`` (as a system message) followed by the ``input`` items, in core terms."""
    out: list[Message] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise InvalidRequestError("instructions must be a string", param="instructions")
        if instructions:
            out.append({"role": "system", "content": instructions})
    raw = body.get("input")
    if isinstance(raw, str):
        out.append({"role": "user", "content": raw})
    elif isinstance(raw, list) and raw:
        for index, item in enumerate(raw):
            _add_item(out, item, f"input[{index}]")
    else:
        raise InvalidRequestError("input must be a string or a non-empty array of items", param="input")
    return out


def _add_item(out: list[Message], item: object, where: str) -> None:
    if not isinstance(item, dict):
        raise InvalidRequestError("each input item must be an object", param=where)
    kind = item.get("type", "message")
    handler = _ITEMS.get(kind) if isinstance(kind, str) else None
    if handler is not None:
        handler(out, item, where)
    elif kind in _STATEFUL_ITEMS:
        raise UnsupportedError(
            f"input item type {kind!r} refers to state stored by OpenAI; it can be passed only to an "
            "OpenAI provider",
            param=f"{where}.type",
        )
    else:
        raise UnsupportedError(
            f"input item type {kind!r} cannot be translated for this provider (only message, "
            "function_call and function_call_output items can)",
            param=f"{where}.type",
        )


def _message(out: list[Message], item: dict[str, Any], where: str) -> None:
    role = item.get("role")
    if role not in _ROLES:
        raise InvalidRequestError(
            "a message item's role must be user, assistant, system or developer", param=f"{where}.role"
        )
    content = item.get("content")
    where = f"{where}.content"
    if role == "assistant":
        out.append({"role": "assistant", "content": _assistant_text(content, where)})
    elif isinstance(content, str):
        out.append({"role": role, "content": content})
    elif isinstance(content, list):
        parts = [_input_part(part, f"{where}[{index}]") for index, part in enumerate(content)]
        out.append({"role": role, "content": parts})
    else:
        raise InvalidRequestError("content must be a string or an array of parts", param=where)


def _assistant_text(content: object, where: str) -> str:
    """An earlier answer: its text (``output_text`` parts, and ``refusal`` parts, which are text too)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequestError("content must be a string or an array of parts", param=where)
    texts: list[str] = []
    for index, part in enumerate(content):
        at = f"{where}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        field = _ASSISTANT_TEXT.get(str(kind))
        if field is None or not isinstance(part, dict):
            raise UnsupportedError(
                "an assistant message takes output_text and refusal parts only", param=f"{at}.type"
            )
        texts.append(_string(part, field, at))
    return "".join(texts)


def _input_part(part: object, where: str) -> ContentPart:
    if not isinstance(part, dict):
        raise InvalidRequestError("each content part must be an object", param=where)
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": _string(part, "text", where)}
    if kind == "input_image":
        return _image(part, where)
    if kind == "input_file":
        return _file(part, where)
    if kind == "input_audio":
        audio = part.get("input_audio")
        if not isinstance(audio, dict):
            raise InvalidRequestError("input_audio needs data and format", param=f"{where}.input_audio")
        return {"type": "input_audio", "input_audio": audio}  # type: ignore[typeddict-unknown-key]
    raise UnsupportedError(
        f"content part type {kind!r} cannot be translated (input_text, input_image, input_file and "
        "input_audio can)",
        param=f"{where}.type",
    )


def _image(part: dict[str, Any], where: str) -> ContentPart:
    url = part.get("image_url")
    if not isinstance(url, str) or not url:
        if part.get("file_id") is not None:
            raise UnsupportedError(
                "an image given by file_id is stored by OpenAI; it can be passed only to an OpenAI "
                "provider (use image_url with an https or data: URL)",
                param=f"{where}.file_id",
            )
        raise InvalidRequestError("input_image needs an image_url", param=f"{where}.image_url")
    image: dict[str, str] = {"url": url}
    detail = part.get("detail")
    if isinstance(detail, str) and detail != "auto":
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}  # type: ignore[typeddict-item]


def _file(part: dict[str, Any], where: str) -> ContentPart:
    if part.get("file_url") is not None:
        raise UnsupportedError(
            "input_file by file_url cannot be translated; send file_data", param=f"{where}.file_url"
        )
    file = {key: part[key] for key in ("file_data", "file_id", "filename") if part.get(key) is not None}
    if "file_data" not in file and "file_id" not in file:
        raise InvalidRequestError("input_file needs file_data or file_id", param=where)
    return {"type": "file", "file": file}  # type: ignore[typeddict-unknown-key]


def _function_call(out: list[Message], item: dict[str, Any], where: str) -> None:
    call: ToolCall = {
        "id": _string(item, "call_id", where),
        "type": "function",
        "function": {"name": _string(item, "name", where), "arguments": _string(item, "arguments", where)},
    }
    last = out[-1] if out else None
    if last is not None and last.get("role") == "assistant":
        last.setdefault("tool_calls", []).append(call)  # the same model turn
    else:
        out.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _function_call_output(out: list[Message], item: dict[str, Any], where: str) -> None:
    output = item.get("output")
    content: str | list[ContentPart]
    if isinstance(output, str):
        content = output
    elif isinstance(output, list):
        content = []
        for index, part in enumerate(output):
            at = f"{where}.output[{index}]"
            if not isinstance(part, dict) or part.get("type") != "input_text":
                raise UnsupportedError("a function_call_output can carry input_text parts only", param=at)
            content.append({"type": "text", "text": _string(part, "text", at)})
    else:
        raise InvalidRequestError("output must be a string or an array of parts", param=f"{where}.output")
    out.append({"role": "tool", "tool_call_id": _string(item, "call_id", where), "content": content})


def _string(data: dict[str, Any], field: str, where: str) -> str:
    value = data.get(field)
    if not isinstance(value, str):
        raise InvalidRequestError(f"{field} must be a string", param=f"{where}.{field}")
    return value


_ITEMS: dict[str, Callable[[list[Message], dict[str, Any], str], None]] = {
    "message": _message,
    "function_call": _function_call,
    "function_call_output": _function_call_output,
}
