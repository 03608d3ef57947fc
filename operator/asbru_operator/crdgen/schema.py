"""Pydantic JSON Schema -> Kubernetes *structural* OpenAPI v3 schema.

The API server accepts a subset of JSON Schema: no ``$ref``, a ``type`` on every node, no
``anyOf`` except int-or-string, no ``patternProperties``/``propertyNames``, the draft-4 boolean
form of ``exclusiveMinimum``, and ``additionalProperties`` only for maps. Pydantic emits the
draft 2020-12 dialect, so this module rewrites one into the other. It fails loudly on anything it
cannot express instead of emitting a schema the API server would reject at install time.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

Schema = dict[str, Any]

_DROPPED = {"title", "propertyNames", "$defs"}
_PRESERVE = "x-kubernetes-preserve-unknown-fields"


class SchemaError(ValueError):
    """A model uses a construct a structural schema cannot express."""


def structural_schema(model: type[BaseModel]) -> Schema:
    """The model's schema, inlined and rewritten into the structural dialect."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _convert(raw, raw.get("$defs", {}))


def _convert(node: Schema, defs: Schema) -> Schema:
    node = _resolve(node, defs)
    if "anyOf" in node:
        node = _collapse_any_of(node, defs)
    out: Schema = {}
    for key, value in node.items():
        if key in _DROPPED or (key == "default" and value is None):
            continue
        if key == "properties":
            out[key] = {name: _convert(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out[key] = _convert(value, defs)
        elif key == "const":
            out["enum"] = [value]
        elif key in {"exclusiveMinimum", "exclusiveMaximum"} and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key in {"additionalProperties", "patternProperties"}:
            out.update(_map_values(key, value, node, defs))
        else:
            out[key] = value
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out[_PRESERVE] = True
    return out


def _resolve(node: Schema, defs: Schema) -> Schema:
    """Inline ``$ref`` (and pydantic's ``allOf: [{$ref}]``); the referring node's keys win."""
    if "allOf" in node and len(node["allOf"]) == 1:
        node = {**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        node = {**_resolve(target, defs), **siblings}
    return node


def _collapse_any_of(node: Schema, defs: Schema) -> Schema:
    """``X | None`` becomes an optional X; ``int | str`` becomes x-kubernetes-int-or-string."""
    options = [_resolve(opt, defs) for opt in node["anyOf"] if opt.get("type") != "null"]
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    if len(options) == 1:
        return {**options[0], **rest}
    if sorted(opt.get("type", "") for opt in options) == ["integer", "string"]:
        return {**rest, "x-kubernetes-int-or-string": True}
    raise SchemaError(f"anyOf cannot be expressed structurally: {node['anyOf']!r}")


def _map_values(key: str, value: Any, node: Schema, defs: Schema) -> Schema:
    """Maps: ``additionalProperties`` holds the value schema; ``true`` means open on purpose."""
    if key == "patternProperties":
        if len(value) != 1:
            raise SchemaError("a map may have only one key pattern")
        return {"additionalProperties": _convert(next(iter(value.values())), defs)}
    if value is False:
        return {}  # pruning drops unknown fields; strict field validation rejects them
    if value is True or value == {}:
        return {_PRESERVE: True}
    if "patternProperties" in node:
        return {}
    return {"additionalProperties": _convert(value, defs)}
