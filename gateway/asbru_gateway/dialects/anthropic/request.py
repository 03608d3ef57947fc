"""Anthropic Messages request bodies: the checks every request gets, and the translation to the core.

``check_messages`` runs on every request (cheap: the fields routing and any provider need), so a
malformed body is a 400 in Anthropic's shape even when it would have passed through. ``chat_to_core``
runs only when the request cannot pass through (another provider family, a
plugin that reads or edits the core body): every field is translated or, when the core has no place
for it, refused with ``UnsupportedError`` naming it. Nothing is dropped silently, with two documented
exceptions of defaults that change nothing (``service_tier: auto``, ``thinking: disabled``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asbru_gateway.core.schema import Tool
from asbru_gateway.dialects.anthropic.messages import core_messages, untranslatable
from asbru_gateway.errors import InvalidRequestError

ROLES = ("user", "assistant")


def check_messages(body: dict[str, Any], *, needs_max_tokens: bool) -> None:
    """What every request must have: ``max_tokens`` (Messages only) and well-formed turns."""
    if needs_max_tokens:
        positive_int(body.get("max_tokens"), "max_tokens")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError("messages: must be a non-empty array", param="messages")
    for index, message in enumerate(messages):
        param = f"messages[{index}]"
        if not isinstance(message, dict):
            raise InvalidRequestError(f"{param}: must be an object", param=param)
        if message.get("role") not in ROLES:
            raise InvalidRequestError(f"{param}.role: must be 'user' or 'assistant'", param=f"{param}.role")
        if not isinstance(message.get("content"), str | list):
            raise InvalidRequestError(
                f"{param}.content: must be a string or an array of blocks", param=f"{param}.content"
            )


def chat_to_core(body: dict[str, Any]) -> dict[str, Any]:
    """A ``POST /messages`` body as a core ``ChatBody`` (also a ``count_tokens`` body: the prompt)."""
    core: dict[str, Any] = {
        "model": body["model"],
        "messages": core_messages(body.get("system"), body["messages"]),
    }
    for name, value in body.items():
        if value is None or name in _STRUCTURE:
            continue
        option = _OPTIONS.get(name)
        if option is None:
            raise untranslatable(f"{name!r}", name)
        option(value, core)
    return core


# --- options --------------------------------------------------------------------------------------


def positive_int(value: object, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequestError(f"{param}: must be a positive integer", param=param)
    return value


def _number(param: str) -> Callable[[Any, dict[str, Any]], None]:
    def copy(value: Any, core: dict[str, Any]) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequestError(f"{param}: must be a number", param=param)
        core[param] = value

    return copy


def _max_tokens(value: Any, core: dict[str, Any]) -> None:
    core["max_tokens"] = positive_int(value, "max_tokens")


def _top_k(value: Any, core: dict[str, Any]) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequestError("top_k: must be a non-negative integer", param="top_k")
    core["top_k"] = value


def _stop_sequences(value: Any, core: dict[str, Any]) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidRequestError("stop_sequences: must be an array of strings", param="stop_sequences")
    if value:
        core["stop"] = list(value)


def _stream(value: Any, core: dict[str, Any]) -> None:
    if value is True:
        core["stream"] = True


def _metadata(value: Any, core: dict[str, Any]) -> None:
    if not isinstance(value, dict):
        raise InvalidRequestError("metadata: must be an object", param="metadata")
    for name, item in value.items():
        if item is None:
            continue
        if name != "user_id":
            raise untranslatable(f"metadata.{name}", f"metadata.{name}")
        if not isinstance(item, str):
            raise InvalidRequestError("metadata.user_id: must be a string", param="metadata.user_id")
        core["user"] = item


def _thinking(value: Any, core: dict[str, Any]) -> None:
    """``{"type": "enabled", "budget_tokens": N}`` -> the core ``thinking`` extension."""
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "disabled":
        return
    if kind != "enabled":
        raise untranslatable(f"thinking type {kind!r}", "thinking.type")
    if value.get("display") not in (None, "summarized"):  # the core shows reasoning as it comes
        raise untranslatable("thinking.display", "thinking.display")
    core["thinking"] = {"budget_tokens": positive_int(value.get("budget_tokens"), "thinking.budget_tokens")}


def _output_config(value: Any, core: dict[str, Any]) -> None:
    """Structured output (``format: {type: json_schema, schema}``) -> the core ``response_format``."""
    if not isinstance(value, dict):
        raise InvalidRequestError("output_config: must be an object", param="output_config")
    for name, item in value.items():
        if item is not None and name != "format":
            raise untranslatable(f"output_config.{name}", f"output_config.{name}")
    output = value.get("format")
    if output is None:
        return
    schema = output.get("schema") if isinstance(output, dict) else None
    if not isinstance(output, dict) or output.get("type") != "json_schema" or not isinstance(schema, dict):
        raise InvalidRequestError(
            "output_config.format: must be {'type': 'json_schema', 'schema': {...}}",
            param="output_config.format",
        )
    core["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


def _service_tier(value: Any, core: dict[str, Any]) -> None:
    if value != "auto":
        raise untranslatable(f"service_tier {value!r}", "service_tier")


def _tools(value: Any, core: dict[str, Any]) -> None:
    if not isinstance(value, list):
        raise InvalidRequestError("tools: must be an array", param="tools")
    if value:
        core["tools"] = [_tool(tool, f"tools[{index}]") for index, tool in enumerate(value)]


_TOOL_FIELDS = frozenset({"type", "name", "description", "input_schema", "strict"})


def _tool(tool: object, param: str) -> Tool:
    """A custom (client) tool -> a function tool; server tools (web search, bash...) are refused."""
    if not isinstance(tool, dict):
        raise InvalidRequestError(f"{param}: must be an object", param=param)
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise untranslatable(f"tool type {kind!r}", f"{param}.type")
    for name, item in tool.items():
        if name not in _TOOL_FIELDS and item is not None:
            raise untranslatable(f"{name!r}", f"{param}.{name}")
    name, schema = tool.get("name"), tool.get("input_schema")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError(f"{param}.name: required", param=f"{param}.name")
    if not isinstance(schema, dict):
        raise InvalidRequestError(f"{param}.input_schema: must be an object", param=f"{param}.input_schema")
    function: dict[str, Any] = {"name": name, "parameters": schema}
    description = tool.get("description")
    if description is not None:
        if not isinstance(description, str):
            raise InvalidRequestError(f"{param}.description: must be a string", param=f"{param}.description")
        function["description"] = description
    if isinstance(tool.get("strict"), bool):
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}  # type: ignore[typeddict-item]


def _tool_choice(value: Any, core: dict[str, Any]) -> None:
    """auto/any/tool/none -> auto/required/a named function/none; no parallel use -> the core flag."""
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in ("auto", "none"):
        core["tool_choice"] = kind
    elif kind == "any":
        core["tool_choice"] = "required"
    elif kind == "tool" and isinstance(value.get("name"), str):
        core["tool_choice"] = {"type": "function", "function": {"name": value["name"]}}
    else:
        raise InvalidRequestError(
            "tool_choice: must be {'type': 'auto' | 'any' | 'none'} or {'type': 'tool', 'name': ...}",
            param="tool_choice",
        )
    disable = value.get("disable_parallel_tool_use")
    if disable is not None and not isinstance(disable, bool):
        raise InvalidRequestError(
            "tool_choice.disable_parallel_tool_use: must be a boolean",
            param="tool_choice.disable_parallel_tool_use",
        )
    if disable and kind != "none":
        core["parallel_tool_calls"] = False


_STRUCTURE = frozenset({"model", "messages", "system"})
"""Read by ``chat_to_core`` itself."""

_OPTIONS: dict[str, Callable[[Any, dict[str, Any]], None]] = {
    "max_tokens": _max_tokens,
    "temperature": _number("temperature"),
    "top_p": _number("top_p"),
    "top_k": _top_k,
    "stop_sequences": _stop_sequences,
    "stream": _stream,
    "metadata": _metadata,
    "thinking": _thinking,
    "output_config": _output_config,
    "service_tier": _service_tier,
    "tools": _tools,
    "tool_choice": _tool_choice,
}
"""Every top-level field the core can carry, and how; any other field is refused by name."""
