"""A Responses request body -> a core chat body (``to_core``), field by field.

Every top-level field has an entry in ``_FIELDS``; a field without one is a 400 naming it, so a new
field OpenAI adds is never silently lost on the way to another provider (it still reaches an OpenAI
provider, which takes the body as it is). The decisions, and why:

- ``instructions`` and ``input`` become the messages (``items.py``); ``max_output_tokens`` becomes
  ``max_tokens``; ``text.format`` becomes ``response_format``; ``user`` (or, failing it,
  ``safety_identifier``, its successor) becomes ``user``; function tools and ``tool_choice`` change
  shape only.
- Fields that need OpenAI's stored state (``previous_response_id``, ``conversation``, ``prompt``,
  ``background``, ``store: true``, ...) are a 400 that says so: the gateway keeps no responses.
- ``reasoning`` is a 400 too: the core's ``thinking`` is a token budget, not an effort level, and no
  mapping between the two is faithful across providers; OpenAI reasoning models get it natively.
- ``metadata`` is the client's own bookkeeping: OpenAI stores it with the response and returns it,
  it never reaches the model. The gateway does the same: it is not sent upstream and comes back on
  the rendered response (``response.py``).
- Prompt-cache hints (``prompt_cache_key``, ``prompt_cache_retention``, ``prompt_cache_options``),
  ``stream_options`` (obfuscation padding) and a ``service_tier`` of ``auto``/``default`` change
  nothing the client gets back, so they are accepted and not forwarded.

A field given as ``null`` counts as absent, as OpenAI treats it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asbru_gateway.core.schema import ChatBody, Tool
from asbru_gateway.dialects.openai_responses import items
from asbru_gateway.errors import InvalidRequestError, UnsupportedError

Handler = Callable[[ChatBody, Any, str], None]

_OPENAI_ONLY = "it can be passed only to an OpenAI provider"


def to_core(body: dict[str, Any]) -> dict[str, Any]:
    """The core ``ChatBody`` for a Responses body (raises a 400 for anything it cannot express)."""
    core: ChatBody = {"model": body["model"], "messages": items.messages(body)}
    for name, value in body.items():
        if value is None:
            continue
        handler = _FIELDS.get(name)
        if handler is None:
            raise UnsupportedError(
                f"{name} cannot be translated for this provider; {_OPENAI_ONLY}", param=name
            )
        handler(core, value, name)
    return core  # type: ignore[return-value]


def _skip(core: ChatBody, value: Any, name: str) -> None:
    """Read elsewhere (model, input, instructions), echoed on the response (metadata), or a hint."""


def _empty(value: Any) -> bool:
    """``false``, ``0``, ``[]``, ``{}``, or an object of nulls: asks for nothing."""
    if isinstance(value, dict):
        return all(setting is None for setting in value.values())
    return not value


def _stateful(core: ChatBody, value: Any, name: str) -> None:
    if _empty(value):
        return
    raise UnsupportedError(
        f"{name} needs state that OpenAI stores (the gateway keeps none); {_OPENAI_ONLY}", param=name
    )


def _untranslatable(core: ChatBody, value: Any, name: str) -> None:
    if _empty(value):
        return
    raise UnsupportedError(f"{name} cannot be translated for this provider; {_OPENAI_ONLY}", param=name)


def _stream(core: ChatBody, value: Any, name: str) -> None:
    if value is True:
        core["stream"] = True


def _number(field: str) -> Handler:
    def copy(core: ChatBody, value: Any, name: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequestError(f"{name} must be a number", param=name)
        core[field] = value  # type: ignore[literal-required]

    return copy


def _max_output_tokens(core: ChatBody, value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequestError(f"{name} must be a positive integer", param=name)
    core["max_tokens"] = value


def _parallel_tool_calls(core: ChatBody, value: Any, name: str) -> None:
    if not isinstance(value, bool):
        raise InvalidRequestError(f"{name} must be a boolean", param=name)
    core["parallel_tool_calls"] = value


def _user(core: ChatBody, value: Any, name: str) -> None:
    if not isinstance(value, str):
        raise InvalidRequestError(f"{name} must be a string", param=name)
    if name == "user" or "user" not in core:  # ``user`` wins over its successor
        core["user"] = value


def _service_tier(core: ChatBody, value: Any, name: str) -> None:
    if value not in ("auto", "default"):
        raise UnsupportedError(f"service_tier {value!r} has no meaning here; {_OPENAI_ONLY}", param=name)


def _truncation(core: ChatBody, value: Any, name: str) -> None:
    if value != "disabled":
        raise UnsupportedError(f"truncation {value!r} cannot be translated; {_OPENAI_ONLY}", param=name)


def _tools(core: ChatBody, value: Any, name: str) -> None:
    if not isinstance(value, list):
        raise InvalidRequestError("tools must be an array", param=name)
    tools = [_tool(tool, f"{name}[{index}]") for index, tool in enumerate(value)]
    if tools:
        core["tools"] = tools


def _tool(tool: object, where: str) -> Tool:
    if not isinstance(tool, dict):
        raise InvalidRequestError("each tool must be an object", param=where)
    if tool.get("type") != "function":
        raise UnsupportedError(
            f"tool type {tool.get('type')!r} is a tool OpenAI runs itself; only function tools can be "
            f"translated, {_OPENAI_ONLY}",
            param=f"{where}.type",
        )
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError("a function tool needs a name", param=f"{where}.name")
    function: dict[str, Any] = {"name": name}
    for field, kind in (("description", str), ("parameters", dict), ("strict", bool)):
        value = tool.get(field)
        if value is None:
            continue
        if not isinstance(value, kind):
            raise InvalidRequestError(f"{field} must be a {kind.__name__}", param=f"{where}.{field}")
        function[field] = value
    return {"type": "function", "function": function}  # type: ignore[typeddict-item]


def _tool_choice(core: ChatBody, value: Any, name: str) -> None:
    if value in ("auto", "none", "required"):
        core["tool_choice"] = value
        return
    if isinstance(value, dict) and value.get("type") == "function" and isinstance(value.get("name"), str):
        core["tool_choice"] = {"type": "function", "function": {"name": value["name"]}}
        return
    raise UnsupportedError(
        'tool_choice must be auto, none, required or {"type": "function", "name": ...} to be translated',
        param=name,
    )


def _text(core: ChatBody, value: Any, name: str) -> None:
    if not isinstance(value, dict):
        raise InvalidRequestError("text must be an object", param=name)
    for field, setting in value.items():
        if setting is None:
            continue
        if field != "format":
            raise UnsupportedError(
                f"text.{field} cannot be translated; {_OPENAI_ONLY}", param=f"{name}.{field}"
            )
        response_format = _format(setting, f"{name}.format")
        if response_format is not None:
            core["response_format"] = response_format


def _format(value: object, where: str) -> dict[str, Any] | None:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema" and isinstance(value, dict):
        schema = value.get("schema")
        name = value.get("name")
        if not isinstance(schema, dict) or not isinstance(name, str):
            raise InvalidRequestError("a json_schema format needs a name and a schema", param=where)
        spec = {key: value[key] for key in ("name", "schema", "description", "strict") if key in value}
        return {"type": "json_schema", "json_schema": spec}
    raise InvalidRequestError("text.format type must be text, json_object or json_schema", param=where)


_FIELDS: dict[str, Handler] = {
    "model": _skip,
    "input": _skip,
    "instructions": _skip,
    "metadata": _skip,
    "stream_options": _skip,
    "prompt_cache_key": _skip,
    "prompt_cache_retention": _skip,
    "prompt_cache_options": _skip,
    "stream": _stream,
    "temperature": _number("temperature"),
    "top_p": _number("top_p"),
    "max_output_tokens": _max_output_tokens,
    "parallel_tool_calls": _parallel_tool_calls,
    "user": _user,
    "safety_identifier": _user,
    "tools": _tools,
    "tool_choice": _tool_choice,
    "text": _text,
    "service_tier": _service_tier,
    "truncation": _truncation,
    "previous_response_id": _stateful,
    "conversation": _stateful,
    "prompt": _stateful,
    "background": _stateful,
    "background_options": _stateful,
    "context_management": _stateful,
    "store": _stateful,
    "reasoning": _untranslatable,
    "include": _untranslatable,
    "max_tool_calls": _untranslatable,
    "top_logprobs": _untranslatable,
}
