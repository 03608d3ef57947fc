"""Gemini ``contents`` and ``systemInstruction`` -> core messages.

Where the two shapes differ, and how this module bridges it:

- Gemini's roles are ``user`` and ``model`` (plus the legacy ``function`` for function results);
  a turn is a list of parts. A ``user`` turn becomes a user message, a ``model`` turn an assistant
  message (its text parts joined, its ``functionCall`` parts as ``tool_calls``).
- Function results are ``functionResponse`` parts of a user turn and name the *function*; the core
  answers a call *id*. Calls without an id (most Gemini clients send none) get one here, and each
  result is matched to the earliest unanswered call of its name. Tool messages go before the rest
  of their turn, as the core requires them right after the assistant message that made the calls.
- Images are ``inlineData`` (base64, becomes a ``data:`` URL) or ``fileData`` (a URI); audio
  ``inlineData`` becomes ``input_audio``, a PDF a ``file`` part.
- ``thought`` parts and ``thoughtSignature``s are Gemini's own reasoning state, returned by a
  previous answer: they are not content, and no other provider could read them, so they are left
  out (the conversation itself is complete without them).
"""

from __future__ import annotations

from typing import Any

import orjson

from asbru_gateway.core.schema import ContentPart, Message, ToolCall
from asbru_gateway.dialects.gemini.fields import JSON, array, boolean, fields, string, untranslatable
from asbru_gateway.errors import InvalidRequestError

_CONTENT = frozenset({"role", "parts"})
_PART = frozenset(
    {"text", "inlineData", "fileData", "functionCall", "functionResponse", "thought", "thoughtSignature"}
)
_BLOB = frozenset({"mimeType", "data", "displayName"})
_FILE = frozenset({"mimeType", "fileUri", "displayName"})
_CALL = frozenset({"id", "name", "args"})
_RESPONSE = frozenset({"id", "name", "response"})
_AUDIO = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/mp3": "mp3", "audio/mpeg": "mp3"}
_USER_ROLES = frozenset({"user", "function"})


def system_message(value: Any, where: str = "systemInstruction") -> Message | None:
    """``systemInstruction`` (a Content of text parts; its role is ignored, as Gemini does)."""
    if isinstance(value, str):
        return {"role": "system", "content": value}
    content = fields(value, where, _CONTENT)
    texts: list[ContentPart] = []
    for index, part in enumerate(array(content.get("parts", []), f"{where}.parts")):
        piece = _part(part, f"{where}.parts[{index}]")
        if piece.get("thought") is True:
            continue
        if set(piece) - {"text", "thoughtSignature"}:
            raise InvalidRequestError("a system instruction takes text parts only", param=f"{where}.parts")
        texts.append({"type": "text", "text": string(piece.get("text", ""), f"{where}.parts[{index}].text")})
    return {"role": "system", "content": _user_content(texts)} if texts else None


class Conversation:
    """Core messages, built one Gemini ``Content`` at a time."""

    __slots__ = ("_calls", "_known_ids", "_unanswered", "messages")

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._calls = 0
        self._unanswered: dict[str, list[str]] = {}
        """function name -> ids of its calls not answered yet, oldest first."""
        self._known_ids: set[str] = set()

    def add(self, content: Any, where: str) -> None:
        turn = fields(content, where, _CONTENT)
        role = string(turn.get("role", "user"), f"{where}.role")
        parts = array(turn.get("parts"), f"{where}.parts")
        pieces = [
            (f"{where}.parts[{index}]", _part(part, f"{where}.parts[{index}]"))
            for index, part in enumerate(parts)
        ]
        pieces = [(at, piece) for at, piece in pieces if piece.get("thought") is not True]
        if role == "model":
            self._model_turn(pieces)
        elif role in _USER_ROLES:
            self._user_turn(pieces)
        else:
            raise InvalidRequestError(
                f"unsupported role {role!r}: a turn's role is user or model", param=f"{where}.role"
            )

    def _model_turn(self, pieces: list[tuple[str, JSON]]) -> None:
        texts: list[str] = []
        calls: list[ToolCall] = []
        for at, piece in pieces:
            if "text" in piece:
                texts.append(string(piece["text"], f"{at}.text"))
            elif "functionCall" in piece:
                calls.append(self._call(piece["functionCall"], f"{at}.functionCall"))
            elif _data_kind(piece):
                raise untranslatable(f"{at}.{_data_kind(piece)}", "modelMedia")
        if not texts and not calls:
            return
        message: Message = {"role": "assistant", "content": "".join(texts) if texts else None}
        if calls:
            message["tool_calls"] = calls
        self.messages.append(message)

    def _call(self, value: Any, where: str) -> ToolCall:
        call, name, args = _function(value, where, _CALL, "args")
        call_id = call.get("id")
        if call_id is None or call_id == "":
            call_id = f"call_{self._calls}"
        call_id = string(call_id, f"{where}.id")
        self._calls += 1
        self._unanswered.setdefault(name, []).append(call_id)
        self._known_ids.add(call_id)
        return {
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": orjson.dumps(args).decode()},
        }

    def _user_turn(self, pieces: list[tuple[str, JSON]]) -> None:
        """Function results become tool messages, before the rest of the turn (see the module doc)."""
        parts: list[ContentPart] = []
        for at, piece in pieces:
            if "functionResponse" in piece:
                self.messages.append(self._result(piece["functionResponse"], f"{at}.functionResponse"))
            elif "text" in piece:
                parts.append({"type": "text", "text": string(piece["text"], f"{at}.text")})
            elif "inlineData" in piece:
                parts.append(_inline(piece["inlineData"], f"{at}.inlineData"))
            elif "fileData" in piece:
                parts.append(_file(piece["fileData"], f"{at}.fileData"))
            elif "functionCall" in piece:
                raise InvalidRequestError("only model turns make function calls", param=f"{at}.functionCall")
        if parts:
            self.messages.append({"role": "user", "content": _user_content(parts)})

    def _result(self, value: Any, where: str) -> Message:
        result, name, response = _function(value, where, _RESPONSE, "response")
        waiting = self._unanswered.get(name) or []
        call_id = result.get("id")
        if isinstance(call_id, str) and call_id in self._known_ids:
            if call_id in waiting:
                waiting.remove(call_id)
        elif waiting:
            call_id = waiting.pop(0)
        else:
            raise InvalidRequestError(
                f"functionResponse for {name!r} answers no earlier functionCall of that name",
                param=f"{where}.name",
            )
        return {"role": "tool", "tool_call_id": call_id, "content": orjson.dumps(response).decode()}


def _function(value: Any, where: str, known: frozenset[str], payload: str) -> tuple[JSON, str, JSON]:
    """A ``functionCall``/``functionResponse``: its fields, the function's name, its object payload."""
    function = fields(value, where, known)
    name = string(function.get("name"), f"{where}.name")
    data = function.get(payload, {})
    if not isinstance(data, dict):
        raise InvalidRequestError(f"{where}.{payload} must be an object", param=f"{where}.{payload}")
    return function, name, data


def _part(value: Any, where: str) -> JSON:
    part = fields(value, where, _PART)
    if "thought" in part:
        boolean(part["thought"], f"{where}.thought")
    return part


def _data_kind(piece: JSON) -> str | None:
    for kind in ("inlineData", "fileData", "functionResponse"):
        if kind in piece:
            return kind
    return None


def _user_content(parts: list[ContentPart]) -> str | list[ContentPart]:
    """One text part is sent as a plain string, which every provider and server takes."""
    if len(parts) == 1 and parts[0]["type"] == "text":
        return parts[0]["text"]
    return parts


def _inline(value: Any, where: str) -> ContentPart:
    blob = fields(value, where, _BLOB)
    mime = string(blob.get("mimeType"), f"{where}.mimeType")
    data = string(blob.get("data"), f"{where}.data")
    if mime.startswith("image/"):
        return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}}
    audio = _AUDIO.get(mime)
    if audio is not None:
        return {"type": "input_audio", "input_audio": {"data": data, "format": audio}}  # type: ignore[typeddict-unknown-key]
    if mime == "application/pdf":
        file = {
            "filename": blob.get("displayName") or "document.pdf",
            "file_data": f"data:{mime};base64,{data}",
        }
        return {"type": "file", "file": file}  # type: ignore[typeddict-unknown-key]
    raise untranslatable(f"{where}.mimeType", f"inlineData of type {mime}")


def _file(value: Any, where: str) -> ContentPart:
    file = fields(value, where, _FILE)
    uri = string(file.get("fileUri"), f"{where}.fileUri")
    mime = file.get("mimeType")
    if mime is not None and not string(mime, f"{where}.mimeType").startswith("image/"):
        raise untranslatable(f"{where}.mimeType", f"fileData of type {mime}")
    return {"type": "image_url", "image_url": {"url": uri}}
