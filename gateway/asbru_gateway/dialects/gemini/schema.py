"""Gemini ``Schema`` (an OpenAPI 3.0 subset) -> JSON Schema, for tool parameters and response schemas.

Gemini clients describe function parameters and structured output either as a Gemini ``Schema``
(``parameters``, ``responseSchema``: upper-case types such as ``"OBJECT"``, ``nullable``, int64
bounds written as strings) or as plain JSON Schema (``parametersJsonSchema``,
``responseJsonSchema``, passed on as they are). The core speaks JSON Schema, so the first kind is
rewritten: types lower-cased, ``nullable`` as a ``"null"`` type, ``example`` as ``examples``,
numeric strings as numbers. ``propertyOrdering`` (an output-order hint with no JSON Schema
equivalent) is left out.
"""

from __future__ import annotations

from typing import Any

from asbru_gateway.dialects.gemini.fields import JSON, camel, integer
from asbru_gateway.errors import InvalidRequestError

_INTEGERS = frozenset({"minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"})
_NUMBERS = frozenset({"minimum", "maximum"})


def json_schema(schema: Any, where: str) -> JSON:
    """A JSON Schema copy of a Gemini ``Schema`` (the input is never modified)."""
    if not isinstance(schema, dict):
        raise InvalidRequestError(f"{where} must be an object", param=where)
    out: JSON = {}
    nullable = False
    for key, value in schema.items():
        name = camel(key)
        if value is None or name == "propertyOrdering":
            continue
        if name == "nullable":
            nullable = value is True
        else:
            _convert(out, name, value, f"{where}.{name}")
    if nullable:
        _allow_null(out)
    return out


def _convert(out: JSON, name: str, value: Any, where: str) -> None:
    if name == "type":
        kind = _type(value, where)
        if kind is not None:
            out["type"] = kind
    elif name == "properties":
        out["properties"] = _properties(value, where)
    elif name == "items":
        out["items"] = json_schema(value, where)
    elif name == "anyOf":
        out["anyOf"] = _alternatives(value, where)
    elif name == "example":
        out["examples"] = [value]
    elif name in _INTEGERS:
        out[name] = integer(value, where)
    elif name in _NUMBERS:
        out[name] = _number(value, where)
    else:
        out[name] = value


def _type(value: Any, where: str) -> str | None:
    if not isinstance(value, str):
        raise InvalidRequestError(f"{where} must be a string", param=where)
    kind = value.lower()
    return None if kind == "type_unspecified" else kind


def _properties(value: Any, where: str) -> JSON:
    if not isinstance(value, dict):
        raise InvalidRequestError(f"{where} must be an object", param=where)
    return {name: json_schema(sub, f"{where}.{name}") for name, sub in value.items()}


def _alternatives(value: Any, where: str) -> list[JSON]:
    if not isinstance(value, list):
        raise InvalidRequestError(f"{where} must be an array", param=where)
    return [json_schema(option, f"{where}[{index}]") for index, option in enumerate(value)]


def _number(value: Any, where: str) -> float | int:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    raise InvalidRequestError(f"{where} must be a number", param=where)


def _allow_null(out: JSON) -> None:
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = [kind, "null"]
    elif "anyOf" in out:
        out["anyOf"] = [*out["anyOf"], {"type": "null"}]
