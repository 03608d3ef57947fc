"""Gemini ``generationConfig``, ``tools`` and ``toolConfig`` -> the core's flat request fields.

- ``generationConfig``: sampling (``temperature``, ``topP``, ``topK``, ``seed``, penalties), length
  (``maxOutputTokens`` -> ``max_tokens``), ``stopSequences`` -> ``stop``, ``candidateCount`` -> ``n``,
  JSON output (``responseMimeType`` + ``responseSchema``/``responseJsonSchema`` -> ``response_format``),
  ``thinkingConfig.thinkingBudget`` -> the core's ``thinking`` extension.
- ``tools[].functionDeclarations`` -> function tools. A declaration's ``response``/``responseJsonSchema``
  (the function's return type) is left out: google-genai derives it from every Python function's
  return annotation, no other provider has a place for it, and the model's calls do not depend on it.
- ``toolConfig.functionCallingConfig``: ``AUTO``/``ANY``/``NONE`` -> ``auto``/``required``/``none``;
  ``ANY`` with ``allowedFunctionNames`` -> that one function, or ``required`` over only those tools.

Everything else (other tool kinds such as ``googleSearch``, ``thinkingLevel``, ``includeThoughts``,
non-text output modalities, ...) is a 400 naming the field, raised by ``fields``.
"""

from __future__ import annotations

from typing import Any

from asbru_gateway.core.schema import ChatBody, Tool
from asbru_gateway.dialects.gemini.fields import (
    JSON,
    array,
    boolean,
    fields,
    integer,
    number,
    string,
    strings,
    untranslatable,
)
from asbru_gateway.dialects.gemini.schema import json_schema
from asbru_gateway.errors import InvalidRequestError

_GENERATION = frozenset(
    {
        "temperature",
        "topP",
        "topK",
        "maxOutputTokens",
        "stopSequences",
        "candidateCount",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "thinkingConfig",
        "responseModalities",
    }
)
_SAMPLING = (
    ("temperature", "temperature"),
    ("topP", "top_p"),
    ("presencePenalty", "presence_penalty"),
    ("frequencyPenalty", "frequency_penalty"),
)
_INTEGERS = (("topK", "top_k"), ("maxOutputTokens", "max_tokens"), ("seed", "seed"), ("candidateCount", "n"))
_THINKING = frozenset({"thinkingBudget", "includeThoughts"})
_TOOL = frozenset({"functionDeclarations"})
_DECLARATION = frozenset(
    {"name", "description", "parameters", "parametersJsonSchema", "response", "responseJsonSchema"}
)
_TOOL_CONFIG = frozenset({"functionCallingConfig"})
_CALLING = frozenset({"mode", "allowedFunctionNames"})
_MODES = {"AUTO": "auto", "ANY": "required", "NONE": "none", "MODE_UNSPECIFIED": None}


def generation(value: Any, core: ChatBody, where: str = "generationConfig") -> None:
    """Copy ``generationConfig`` into ``core``."""
    config = fields(value, where, _GENERATION)
    target: dict[str, Any] = core  # type: ignore[assignment]  # the names below are ChatBody fields
    for name, core_name in _SAMPLING:
        if name in config:
            target[core_name] = number(config[name], f"{where}.{name}")
    for name, core_name in _INTEGERS:
        if name in config:
            target[core_name] = integer(config[name], f"{where}.{name}")
    if "stopSequences" in config:
        core["stop"] = strings(config["stopSequences"], f"{where}.stopSequences")
    _response_format(config, core, where)
    if "thinkingConfig" in config:
        _thinking(config["thinkingConfig"], core, f"{where}.thinkingConfig")
    modalities = strings(config.get("responseModalities", []), f"{where}.responseModalities")
    if any(modality.upper() != "TEXT" for modality in modalities):
        raise untranslatable(f"{where}.responseModalities", "responseModalities")


def _response_format(config: JSON, core: ChatBody, where: str) -> None:
    mime = config.get("responseMimeType")
    schema = config.get("responseJsonSchema")
    if schema is not None:
        if not isinstance(schema, dict):
            raise InvalidRequestError("must be an object", param=f"{where}.responseJsonSchema")
    elif "responseSchema" in config:
        schema = json_schema(config["responseSchema"], f"{where}.responseSchema")
    if mime is not None and string(mime, f"{where}.responseMimeType") not in (
        "application/json",
        "text/plain",
    ):
        raise untranslatable(f"{where}.responseMimeType", "responseMimeType")
    if schema is not None:
        core["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": schema},
        }
    elif mime == "application/json":
        core["response_format"] = {"type": "json_object"}


def _thinking(value: Any, core: ChatBody, where: str) -> None:
    """A positive budget -> ``thinking``; 0 (off) and -1 (the model decides) are every provider's default."""
    config = fields(value, where, _THINKING)
    if config.get("includeThoughts") is not None and boolean(
        config["includeThoughts"], f"{where}.includeThoughts"
    ):
        raise untranslatable(f"{where}.includeThoughts", "includeThoughts")
    budget = integer(config.get("thinkingBudget", 0), f"{where}.thinkingBudget")
    if budget > 0:
        core["thinking"] = {"budget_tokens": budget}


def tools(value: Any, where: str = "tools") -> list[Tool]:
    out: list[Tool] = []
    for index, tool in enumerate(array(value, where)):
        declared = fields(tool, f"{where}[{index}]", _TOOL)
        at = f"{where}[{index}].functionDeclarations"
        for position, declaration in enumerate(array(declared.get("functionDeclarations", []), at)):
            out.append(_function(declaration, f"{at}[{position}]"))
    return out


def _function(value: Any, where: str) -> Tool:
    declaration = fields(value, where, _DECLARATION)
    spec: dict[str, Any] = {"name": string(declaration.get("name"), f"{where}.name")}
    if "description" in declaration:
        spec["description"] = string(declaration["description"], f"{where}.description")
    if "parametersJsonSchema" in declaration:
        parameters = declaration["parametersJsonSchema"]
        if not isinstance(parameters, dict):
            raise InvalidRequestError("must be an object", param=f"{where}.parametersJsonSchema")
        spec["parameters"] = parameters
    elif "parameters" in declaration:
        spec["parameters"] = json_schema(declaration["parameters"], f"{where}.parameters")
    return {"type": "function", "function": spec}  # type: ignore[typeddict-item]


def tool_choice(value: Any, core: ChatBody, where: str = "toolConfig") -> None:
    """``functionCallingConfig`` -> ``tool_choice`` (and the offered tools narrowed, for ``ANY`` with
    several allowed names: the core has no "one of these" choice, offering only them is the same)."""
    config = fields(value, where, _TOOL_CONFIG)
    if "functionCallingConfig" not in config:
        return
    at = f"{where}.functionCallingConfig"
    calling = fields(config["functionCallingConfig"], at, _CALLING)
    mode_name = string(calling.get("mode", "MODE_UNSPECIFIED"), f"{at}.mode").upper()
    if mode_name not in _MODES:
        raise untranslatable(f"{at}.mode", f"mode {mode_name}")
    mode = _MODES[mode_name]
    allowed = strings(calling.get("allowedFunctionNames", []), f"{at}.allowedFunctionNames")
    if allowed and mode != "required":
        raise InvalidRequestError("allowedFunctionNames needs mode ANY", param=f"{at}.allowedFunctionNames")
    if len(allowed) == 1:
        core["tool_choice"] = {"type": "function", "function": {"name": allowed[0]}}
        return
    if allowed:
        offered = [tool for tool in core.get("tools", []) if tool["function"].get("name") in allowed]
        if not offered:
            raise InvalidRequestError(
                "allowedFunctionNames names no declared function", param=f"{at}.allowedFunctionNames"
            )
        core["tools"] = offered
    if mode is not None:
        core["tool_choice"] = mode
