"""Reading Gemini JSON objects field by field, the way Google's API reads them.

Google's JSON parser (proto3 JSON) accepts every field in camelCase *and* in snake_case, and the
``google-genai`` SDK sends both: ``inlineData: {"mime_type": ...}``, ``"parameters_json_schema"``,
``"thinkingConfig": {"thinking_budget": ...}``. So each object is read through ``fields``, which
gives its fields by their camelCase name, skips nulls (proto3 treats them as unset) and answers a
400 naming any field it does not know: the translation to the core is the one place where a
Gemini field can be lost, and losing one silently is what the rule forbids.

Only structural objects go through ``fields``; user data (function ``args``, ``response`` objects,
schema property names) is never renamed.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from asbru_gateway.errors import InvalidRequestError, UnsupportedError

JSON = dict[str, Any]

_WHY_NOT: dict[str, str] = {
    "safetySettings": "safety settings are Gemini's own content policy, which no other provider applies",
    "cachedContent": "cached content lives in Gemini's own storage",
    "googleSearch": "Google Search grounding is a Gemini-side tool",
    "googleSearchRetrieval": "Google Search grounding is a Gemini-side tool",
    "codeExecution": "code execution is a Gemini-side tool",
    "urlContext": "URL context is a Gemini-side tool",
}


@cache
def camel(name: str) -> str:
    """``mime_type`` -> ``mimeType``; a camelCase name is returned as it is."""
    if "_" not in name:
        return name
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def fields(value: Any, where: str, known: frozenset[str]) -> JSON:
    """The object's set fields by camelCase name; a non-object or an unknown field is a 400."""
    if not isinstance(value, dict):
        raise InvalidRequestError(f"{where} must be an object", param=where)
    out: JSON = {}
    for key, item in value.items():
        if item is None:
            continue
        name = camel(key)
        if name not in known:
            raise untranslatable(f"{where}.{name}" if where else name, name)
        out[name] = item
    return out


def untranslatable(param: str, name: str) -> UnsupportedError:
    """The 400 for a Gemini field that has no equivalent for a provider other than Gemini."""
    reason = _WHY_NOT.get(name, "it has no equivalent in the gateway's common request format")
    return UnsupportedError(
        f"{param} can only be sent to a Gemini provider ({reason}), and this model is not served by one",
        param=param,
    )


def string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequestError(f"{where} must be a string", param=where)
    return value


def array(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidRequestError(f"{where} must be an array", param=where)
    return value


def strings(value: Any, where: str) -> list[str]:
    items = array(value, where)
    for index, item in enumerate(items):
        string(item, f"{where}[{index}]")
    return items


def integer(value: Any, where: str) -> int:
    """An integer; also as a decimal string (how proto3 JSON writes int64 fields) or a whole float
    (google-genai types ``top_k`` as a float and sends ``5.0``)."""
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"{where} must be an integer", param=where)
    return value


def number(value: Any, where: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequestError(f"{where} must be a number", param=where)
    return value


def boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidRequestError(f"{where} must be a boolean", param=where)
    return value
