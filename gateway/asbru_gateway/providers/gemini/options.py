"""The non-message parts of a chat request: tools, tool choice and ``generationConfig``.

OpenAI keeps these flat on the request; Gemini groups them (``tools[].functionDeclarations``,
``toolConfig.functionCallingConfig``, ``generationConfig``). Values are type-checked here because
Gemini's own complaint would name its field, not the one the client sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asbru_gateway.errors import InvalidRequestError, UnsupportedError
from asbru_gateway.providers.gemini.schema import is_empty_object, to_gemini_schema

JSON = dict[str, Any]

_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}

# OpenAI name -> (Gemini generationConfig name, accepted Python types)
_NUMBERS: tuple[tuple[str, str, tuple[type, ...]], ...] = (
    ("temperature", "temperature", (int, float)),
    ("top_p", "topP", (int, float)),
    ("top_k", "topK", (int,)),
    ("n", "candidateCount", (int,)),
    ("seed", "seed", (int,)),
    ("presence_penalty", "presencePenalty", (int, float)),
    ("frequency_penalty", "frequencyPenalty", (int, float)),
)


def tools(value: Any) -> list[JSON] | None:
    """OpenAI function tools -> one Gemini ``tools`` entry holding all ``functionDeclarations``."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidRequestError("tools must be an array", param="tools")
    declarations = [_declaration(tool, f"tools[{index}]") for index, tool in enumerate(value)]
    return [{"functionDeclarations": declarations}] if declarations else None


def _declaration(tool: Any, where: str) -> JSON:
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        raise UnsupportedError("only function tools are supported by Gemini", param=f"{where}.type")
    function = tool.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(function, dict) or not isinstance(name, str) or not name:
        raise InvalidRequestError("a function tool needs function.name", param=f"{where}.function.name")
    declaration: JSON = {"name": name}
    description = function.get("description")
    if isinstance(description, str) and description:
        declaration["description"] = description
    parameters = function.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidRequestError(
            "function parameters must be an object", param=f"{where}.function.parameters"
        )
    # Gemini rejects an object schema without properties; a function without parameters says the same.
    if parameters is not None and not is_empty_object(parameters):
        declaration["parameters"] = to_gemini_schema(parameters)
    return declaration


def tool_config(choice: Any) -> JSON | None:
    """``tool_choice`` -> ``functionCallingConfig``: auto/none/required -> AUTO/NONE/ANY, a named
    function -> ANY restricted to that name."""
    if choice is None:
        return None
    if isinstance(choice, str):
        mode = _TOOL_MODES.get(choice)
        if mode is None:
            raise InvalidRequestError(
                "tool_choice must be auto, none, required or a function", param="tool_choice"
            )
        return {"functionCallingConfig": {"mode": mode}}
    function = choice.get("function") if isinstance(choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    named = isinstance(choice, dict) and choice.get("type") == "function"
    if not named or not isinstance(name, str) or not name:
        raise InvalidRequestError(
            'tool_choice object must be {"type": "function", "function": {"name": ...}}', param="tool_choice"
        )
    return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}


def generation_config(request: Mapping[str, Any]) -> JSON:
    """Sampling and output options; only the ones the client set (Gemini keeps its own defaults)."""
    config: JSON = {}
    max_tokens = request.get("max_completion_tokens")
    param = "max_completion_tokens"
    if max_tokens is None:
        max_tokens, param = request.get("max_tokens"), "max_tokens"
    if max_tokens is not None:
        config["maxOutputTokens"] = _number(max_tokens, param, (int,))
    for name, gemini_name, kinds in _NUMBERS:
        value = request.get(name)
        if value is not None:
            config[gemini_name] = _number(value, name, kinds)
    stop = _stop(request.get("stop"))
    if stop:
        config["stopSequences"] = stop
    config.update(_response_format(request.get("response_format")))
    budget = _thinking_budget(request.get("thinking"))
    if budget is not None:
        config["thinkingConfig"] = {"thinkingBudget": budget}
    return config


def _thinking_budget(thinking: Any) -> int | None:
    """The core's ``thinking`` extension (``{"budget_tokens": N}``) -> ``thinkingConfig.thinkingBudget``."""
    if thinking is None:
        return None
    budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise InvalidRequestError('thinking must be {"budget_tokens": <integer>}', param="thinking")
    return budget


def _number(value: Any, param: str, kinds: tuple[type, ...]) -> Any:
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an integer" if kinds == (int,) else "a number"
        raise InvalidRequestError(f"{param} must be {kind}", param=param)
    return value


def _stop(stop: Any) -> list[str] | None:
    if stop is None:
        return None
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(item, str) for item in stop):
        return list(stop)
    raise InvalidRequestError("stop must be a string or an array of strings", param="stop")


def _response_format(value: Any) -> JSON:
    """json_object -> JSON mime type; json_schema -> the same plus ``responseSchema`` (best effort)."""
    if value is None:
        return {}
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        spec = value.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        config: JSON = {"responseMimeType": "application/json"}
        if isinstance(schema, dict):
            config["responseSchema"] = to_gemini_schema(schema)
        return config
    raise InvalidRequestError(
        "response_format type must be text, json_object or json_schema", param="response_format"
    )
