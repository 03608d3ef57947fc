"""OpenAI ``chat.completions`` body -> Gemini ``GenerateContentRequest`` body.

Where the two formats differ, and how this module bridges it:

- the system prompt is ``systemInstruction``, not a message, so system/developer messages are lifted
  out of the conversation (all of them, in order);
- Gemini has two roles, ``user`` and ``model``; tool results are ``functionResponse`` parts of a user
  turn and name the *function*, not a call id, so the name is looked up from the assistant turn
  that made the call. Consecutive turns of one role are merged, as Gemini expects alternation;
- images are ``inlineData`` (base64 from ``data:`` URLs) or ``fileData`` (a URI Gemini fetches);
- sampling options live in ``generationConfig``, tool choice in ``toolConfig``.

Everything is built fresh: the input dict is never modified (a fallback reuses it).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from asbru_gateway.errors import InvalidRequestError, UnsupportedError
from asbru_gateway.providers.gemini.options import generation_config, tool_config, tools

JSON = dict[str, Any]

_SYSTEM_ROLES = frozenset({"system", "developer"})
_AUDIO_MIME = {"wav": "audio/wav", "mp3": "audio/mp3"}


def build_body(request: Mapping[str, Any]) -> JSON:
    """The Gemini request body for an OpenAI chat request (``InvalidRequestError`` on bad input)."""
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError("messages must be a non-empty array", param="messages")
    conversation = Conversation()
    for index, message in enumerate(messages):
        conversation.add(message, f"messages[{index}]")
    if not conversation.contents:
        raise InvalidRequestError("messages must contain at least one non-system message", param="messages")
    body: JSON = {"contents": conversation.contents}
    if conversation.system:
        body["systemInstruction"] = {"parts": conversation.system}
    declared = tools(request.get("tools"))
    if declared:
        body["tools"] = declared
    choice = tool_config(request.get("tool_choice"))
    if choice:
        body["toolConfig"] = choice
    generation = generation_config(request)
    if generation:
        body["generationConfig"] = generation
    return body


class Conversation:
    """Gemini ``contents`` and ``systemInstruction`` parts, built one OpenAI message at a time."""

    __slots__ = ("_call_names", "contents", "system")

    def __init__(self) -> None:
        self.contents: list[JSON] = []
        self.system: list[JSON] = []
        self._call_names: dict[str, str] = {}
        """tool_call id -> function name, from assistant turns: tool results need the name."""

    def add(self, message: Any, where: str) -> None:
        if not isinstance(message, dict):
            raise InvalidRequestError("each message must be an object", param=where)
        role = message.get("role")
        if role in _SYSTEM_ROLES:
            self.system.extend(text_parts(message.get("content"), f"{where}.content"))
        elif role == "user":
            self._append("user", user_parts(message.get("content"), f"{where}.content"))
        elif role == "assistant":
            self._append("model", self._assistant_parts(message, where))
        elif role in ("tool", "function"):
            self._append("user", [self._tool_result(message, where)])
        else:
            raise InvalidRequestError(f"unsupported message role {role!r}", param=f"{where}.role")

    def _append(self, role: str, parts: list[JSON]) -> None:
        if not parts:  # Gemini rejects a turn without parts; an empty message says nothing anyway
            return
        if self.contents and self.contents[-1]["role"] == role:
            self.contents[-1]["parts"].extend(parts)
        else:
            self.contents.append({"role": role, "parts": parts})

    def _assistant_parts(self, message: JSON, where: str) -> list[JSON]:
        parts = text_parts(message.get("content"), f"{where}.content")
        calls = message.get("tool_calls")
        if calls is not None:
            if not isinstance(calls, list):
                raise InvalidRequestError("tool_calls must be an array", param=f"{where}.tool_calls")
            for index, call in enumerate(calls):
                parts.append(self._function_call(call, f"{where}.tool_calls[{index}]"))
        legacy = message.get("function_call")
        if isinstance(legacy, dict):
            parts.append(self._function_call({"function": legacy}, f"{where}.function_call"))
        return parts

    def _function_call(self, call: Any, where: str) -> JSON:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise InvalidRequestError("a tool call needs a function object", param=where)
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequestError("a tool call needs a function name", param=f"{where}.function.name")
        part: JSON = {"functionCall": {"name": name, "args": _arguments(function.get("arguments"), where)}}
        call_id = call.get("id")
        if isinstance(call_id, str):
            self._call_names[call_id] = name
        signature = _thought_signature(call)
        if signature:
            part["thoughtSignature"] = signature
        return part

    def _tool_result(self, message: JSON, where: str) -> JSON:
        call_id = message.get("tool_call_id")
        name = self._call_names.get(call_id) if isinstance(call_id, str) else None
        if name is None and isinstance(message.get("name"), str):
            name = message["name"]
        if not name:
            raise InvalidRequestError(
                f"tool message answers unknown tool_call_id {call_id!r} (no earlier tool call has it)",
                param=f"{where}.tool_call_id",
            )
        text = "".join(part["text"] for part in text_parts(message.get("content"), f"{where}.content"))
        return {"functionResponse": {"name": name, "response": {"result": _tool_output(text)}}}


def _arguments(arguments: Any, where: str) -> JSON:
    """OpenAI sends arguments as a JSON string; Gemini wants the object (``args`` is a Struct)."""
    if isinstance(arguments, dict):
        return dict(arguments)
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    param = f"{where}.function.arguments"
    if not isinstance(arguments, str):
        raise InvalidRequestError("tool call arguments must be a JSON string", param=param)
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        raise InvalidRequestError("tool call arguments are not valid JSON", param=param) from None
    if not isinstance(parsed, dict):
        raise InvalidRequestError("tool call arguments must be a JSON object", param=param)
    return parsed


def _thought_signature(call: JSON) -> str | None:
    """Gemini 3 needs its function-call thought signatures back; Google's OpenAI layer carries them
    in ``extra_content.google.thought_signature`` and so does this gateway's response translation."""
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) and signature else None


def _tool_output(text: str) -> JSON:
    """A JSON-object result is passed as structure, anything else as ``{"content": text}``."""
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"content": text}


def text_parts(content: Any, where: str) -> list[JSON]:
    """Text-only content (system, assistant, tool): a string or an array of text parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidRequestError("content must be a string or an array of parts", param=where)
    parts = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        key = "refusal" if kind == "refusal" else "text"
        text = part.get(key) if isinstance(part, dict) and kind in ("text", "refusal") else None
        if not isinstance(text, str):
            raise InvalidRequestError("only text parts are allowed here", param=f"{where}[{index}]")
        if text:
            parts.append({"text": text})
    return parts


def user_parts(content: Any, where: str) -> list[JSON]:
    """User content: text, images (``image_url``), audio (``input_audio``), inline files."""
    if content is None or isinstance(content, str):
        return text_parts(content, where)
    if not isinstance(content, list):
        raise InvalidRequestError("content must be a string or an array of parts", param=where)
    parts = []
    for index, part in enumerate(content):
        converted = _user_part(part, f"{where}[{index}]")
        if converted is not None:
            parts.append(converted)
    return parts


def _user_part(part: Any, where: str) -> JSON | None:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidRequestError("a text part needs a text string", param=f"{where}.text")
        return {"text": text} if text else None
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        return _image(url, f"{where}.image_url.url")
    if kind == "input_audio":
        return _audio(part.get("input_audio"), f"{where}.input_audio")
    if kind == "file":
        return _file(part.get("file"), f"{where}.file")
    raise UnsupportedError(f"content part type {kind!r} is not supported by Gemini", param=f"{where}.type")


def _image(url: Any, where: str) -> JSON:
    if not isinstance(url, str) or not url:
        raise InvalidRequestError("image_url needs a url", param=where)
    if url.startswith("data:"):
        return _inline_data(url, where)
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https", "gs"):
        raise InvalidRequestError("image url must be a data:, http(s):// or gs:// URL", param=where)
    guessed, _ = mimetypes.guess_type(parsed.path)
    mime = guessed if guessed and guessed.startswith("image/") else "image/jpeg"
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _inline_data(url: str, where: str) -> JSON:
    """``data:<mime>;base64,<payload>`` -> ``inlineData`` (Gemini wants base64, as data URLs carry)."""
    header, comma, payload = url.partition(",")
    mime, _, encoding = header.removeprefix("data:").partition(";")
    if not comma or encoding != "base64" or not mime or not payload:
        raise InvalidRequestError("data URL must be data:<mime type>;base64,<data>", param=where)
    return {"inlineData": {"mimeType": mime, "data": payload}}


def _audio(audio: Any, where: str) -> JSON:
    data = audio.get("data") if isinstance(audio, dict) else None
    audio_format = audio.get("format") if isinstance(audio, dict) else None
    if not isinstance(data, str) or not data or audio_format not in _AUDIO_MIME:
        raise InvalidRequestError("input_audio needs base64 data and a format wav or mp3", param=where)
    return {"inlineData": {"mimeType": _AUDIO_MIME[audio_format], "data": data}}


def _file(file: Any, where: str) -> JSON:
    data = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data, str) or not data.startswith("data:"):
        raise UnsupportedError("Gemini takes files only inline, as file_data data: URLs", param=where)
    return _inline_data(data, f"{where}.file_data")
