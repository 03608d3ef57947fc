"""A small stand-in for the API server's CRD validation: OpenAPI schema, pruning, CEL rules.

- ``jsonschema`` (draft 4: Kubernetes' dialect, boolean ``exclusiveMinimum``) checks types and bounds;
- ``unknown_fields`` reports what pruning would drop (and strict field validation rejects);
- every ``x-kubernetes-validations`` rule is evaluated with cel-python at the node it is declared on,
  with numbers as doubles where the schema says ``number`` (as Kubernetes' CEL does).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml

CRDS = Path(__file__).parents[2] / "crds"
Schema = dict[str, Any]


def load_schema(plural: str) -> Schema:
    crd = yaml.safe_load((CRDS / f"asbru.dev_{plural}.yaml").read_text())
    schema: Schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def schema_errors(schema: Schema, obj: Any) -> list[str]:
    validator = jsonschema.Draft4Validator(schema)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]


def unknown_fields(schema: Schema, obj: Any, path: str = "") -> list[str]:
    if schema.get("x-kubernetes-preserve-unknown-fields") or not isinstance(obj, dict | list):
        return []
    if isinstance(obj, list):
        return [
            f
            for i, item in enumerate(obj)
            for f in unknown_fields(schema.get("items", {}), item, f"{path}[{i}]")
        ]
    if "additionalProperties" in schema:
        return [
            f
            for k, v in obj.items()
            for f in unknown_fields(schema["additionalProperties"], v, f"{path}.{k}")
        ]
    props = schema.get("properties", {})
    found = [f"{path}.{key}" for key in obj if key not in props]
    for key, value in obj.items():
        if key in props and key != "metadata":
            found += unknown_fields(props[key], value, f"{path}.{key}")
    return found


def rules(schema: Schema, path: str = "") -> Iterator[tuple[str, dict[str, str]]]:
    """Every CEL rule with the schema path it is declared at."""
    for rule in schema.get("x-kubernetes-validations", []):
        yield path, rule
    for key, sub in (schema.get("properties") or {}).items():
        yield from rules(sub, f"{path}.{key}")
    if "items" in schema:
        yield from rules(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from rules(schema["additionalProperties"], f"{path}{{}}")


def cel_violations(schema: Schema, obj: Any) -> list[str]:
    """Messages of every CEL rule ``obj`` breaks (rules on absent fields do not run, as in Kubernetes)."""
    return [detail for _, _, detail in cel_failures(schema, obj)]


def cel_failures(schema: Schema, obj: Any, path: str = "") -> list[tuple[str, dict[str, str], str]]:
    """(path of the declaring node, rule, detail) of every rule ``obj`` breaks.

    The detail is what the API server shows: the ``messageExpression``'s value if it evaluates to a
    non-empty one-line string, else the ``message``.
    """
    found = []
    for rule in schema.get("x-kubernetes-validations", []):
        value = as_cel_value(schema, obj)
        if not evaluate(rule["rule"], value):
            found.append((path, rule, _detail(rule, value)))
    if isinstance(obj, dict):
        for key, value in obj.items():
            sub = (schema.get("properties") or {}).get(key) or (
                schema["additionalProperties"]
                if isinstance(schema.get("additionalProperties"), dict)
                else None
            )
            if sub is not None and key != "metadata":
                found += cel_failures(sub, value, f"{path}.{key}")
    elif isinstance(obj, list) and "items" in schema:
        for index, item in enumerate(obj):
            found += cel_failures(schema["items"], item, f"{path}[{index}]")
    return found


def _detail(rule: dict[str, str], value: Any) -> str:
    if "messageExpression" in rule:
        env = celpy.Environment()
        message = str(
            env.program(env.compile(rule["messageExpression"])).evaluate({"self": celpy.json_to_cel(value)})
        )
        if message.strip() and "\n" not in message:
            return message.strip()
    return rule.get("message") or f"failed rule: {rule['rule']}"


def api_server_errors(plural: str, obj: Any) -> list[str]:
    """CEL failures as the API server words them (``fieldErrorForReason`` in apiextensions-apiserver):
    the field path (``<nil>`` for the root, unless the rule has a ``fieldPath``), then by reason."""
    errors = []
    for path, rule, detail in cel_failures(load_schema(plural), obj):
        where = (path + rule.get("fieldPath", "")).lstrip(".") or "<nil>"
        reason = rule.get("reason", "FieldValueInvalid")
        if reason == "FieldValueDuplicate":
            errors.append(f"{where}: Duplicate value: <value>")  # the detail is dropped
        elif reason == "FieldValueForbidden":
            errors.append(f"{where}: Forbidden: {detail}")
        elif reason == "FieldValueRequired":
            errors.append(f"{where}: Required value: {detail}")
        else:
            errors.append(f"{where}: Invalid value: {detail}")
    return errors


def field_path_resolves(schema: Schema, field_path: str) -> bool:
    """Whether a rule's ``fieldPath`` names a field of ``schema`` (the API server refuses it otherwise)."""
    node = schema
    for name in field_path.lstrip(".").split("."):
        if name in (node.get("properties") or {}):
            node = node["properties"][name]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return False
    return True


def as_cel_value(schema: Schema, obj: Any) -> Any:
    """JSON -> CEL-ready JSON: ``number`` fields become floats (doubles), recursively."""
    if schema.get("type") == "number" and isinstance(obj, int | float):
        return float(obj)
    if isinstance(obj, dict):
        props = schema.get("properties") or {}
        return {k: as_cel_value(props.get(k, {}), v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [as_cel_value(schema.get("items", {}), item) for item in obj]
    return obj


def evaluate(rule: str, value: Any) -> bool:
    env = celpy.Environment()
    program = env.program(env.compile(rule))
    return bool(program.evaluate({"self": celpy.json_to_cel(value)}))


def violations(plural: str, obj: Any) -> list[str]:
    """Everything the API server would refuse about ``obj`` (as far as this stand-in can tell)."""
    schema = load_schema(plural)
    found = schema_errors(schema, obj) + [f"unknown field {f}" for f in unknown_fields(schema, obj)]
    return found or cel_violations(schema, obj)
