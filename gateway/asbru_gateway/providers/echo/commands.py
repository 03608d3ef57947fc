"""What echo answers: the last user message, a tool call it was told to make, or a tool's result.

So that tools and agent mode can be tried without a model:

- last message from the user, ``/tool NAME {json arguments}``: echo calls tool ``NAME`` with those
  arguments (the text after the name, ``{}`` if there is none; passed on as written, like a model's);
- last message a tool result: echo answers ``NAME returned: RESULT`` (each tool message since the
  last assistant message, one line each; the name is found in the assistant's tool calls);
- last user message ``/loop NAME {json arguments}``: echo calls tool ``NAME`` every time, results or
  not (a model that never stops: agent mode's limits can be seen);
- anything else: the last user message's text, echoed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

TOOL_COMMAND = "/tool "
LOOP_COMMAND = "/loop "


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    tool_call: dict[str, Any] | None = None
    """``{"id", "type": "function", "function": {"name", "arguments"}}`` when echo calls a tool."""


def answer(messages: list[Any]) -> Answer:
    last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    text = last_user_text(messages)
    if text.startswith(LOOP_COMMAND):
        return _call(text[len(LOOP_COMMAND) :]) or Answer(text)
    if last.get("role") == "tool":
        return Answer(_tool_results(messages))
    if last.get("role") == "user" and text.startswith(TOOL_COMMAND):
        return _call(text[len(TOOL_COMMAND) :]) or Answer(text)
    return Answer(text)


def _call(command: str) -> Answer | None:
    name, _, arguments = command.strip().partition(" ")
    if not name:
        return None
    call = {
        "id": "call_echo_" + os.urandom(8).hex(),
        "type": "function",
        "function": {"name": name, "arguments": arguments.strip() or "{}"},
    }
    return Answer("", call)


def last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _tool_results(messages: list[Any]) -> str:
    results: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for message in reversed(messages):
        if not isinstance(message, dict):
            continue
        if message.get("role") == "tool":
            results.append(message)
            continue
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict):
                function = call.get("function") or {}
                names[str(call.get("id"))] = str(function.get("name", "tool"))
        break
    lines = []
    for result in reversed(results):
        name = names.get(str(result.get("tool_call_id")), "tool")
        lines.append(f"{name} returned: {content_text(result.get('content'))}")
    return "\n".join(lines)
