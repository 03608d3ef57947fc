"""JSON Schema (what OpenAI clients send) -> Gemini ``Schema`` (a subset of OpenAPI 3.0), best effort.

Gemini's ``parameters`` and ``responseSchema`` reject keys they do not know (``additionalProperties``,
``$schema``, ``strict`` ...), which OpenAI clients send routinely: strict tools must even carry
``additionalProperties: false``. Dropping unknown keys loses only validation hints, while
forwarding them fails the whole request, so this keeps the documented subset and rewrites the two
common JSON Schema idioms Gemini spells differently: type lists and ``null`` alternatives
(``["string", "null"]`` / ``anyOf: [X, {"type": "null"}]`` -> ``nullable``).
"""

from __future__ import annotations

from typing import Any

_KEPT = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "default",
        "enum",
        "example",
        "required",
        "propertyOrdering",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
    }
)


def to_gemini_schema(schema: Any) -> Any:
    """A copy of ``schema`` with only keys Gemini accepts; the input is never modified."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: to_gemini_schema(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = to_gemini_schema(value)
        elif key in ("anyOf", "oneOf") and isinstance(value, list):
            _alternatives(out, value)
        elif key == "type" and isinstance(value, list):
            _type_list(out, value)
        elif key == "const":
            out["enum"] = [value]
        elif key in _KEPT:
            out[key] = value
    return out


def _type_list(out: dict[str, Any], types: list[Any]) -> None:
    """``["string", "null"]`` -> ``type: string, nullable: true``; several real types -> anyOf."""
    real = [kind for kind in types if kind != "null"]
    if len(real) < len(types):
        out["nullable"] = True
    if len(real) == 1:
        out["type"] = real[0]
    elif real:
        out["anyOf"] = [{"type": kind} for kind in real]


def _alternatives(out: dict[str, Any], options: list[Any]) -> None:
    """``anyOf`` without its ``{"type": "null"}`` member (-> nullable); a single survivor is inlined."""
    real = [to_gemini_schema(option) for option in options if option != {"type": "null"}]
    if len(real) < len(options):
        out["nullable"] = True
    if len(real) == 1 and isinstance(real[0], dict):
        for key, value in real[0].items():
            out.setdefault(key, value)
    elif real:
        out["anyOf"] = real


def is_empty_object(schema: Any) -> bool:
    """An object schema without properties: Gemini rejects it as ``parameters`` (omit it instead)."""
    if not isinstance(schema, dict):
        return False
    kind = schema.get("type")
    untyped_or_object = kind is None or (isinstance(kind, str) and kind.lower() == "object")
    return untyped_or_object and not schema.get("properties") and not schema.get("anyOf")
