"""The CRDs: generated files match the models, schemas are structural and bounded, and the
validation (OpenAPI + CEL) accepts good objects and rejects bad ones with clear messages."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml

from asbru_operator.crdgen.__main__ import OUTPUT_DIRS, stale_files
from asbru_operator.crdgen.definitions import KINDS, rendered_files
from tests.address_forms import BASE_URLS
from tests.crds.validation import api_server_errors, field_path_resolves, load_schema, rules, violations

ROOT = Path(__file__).parents[2]
EXAMPLES = list(yaml.safe_load_all((Path(__file__).parent / "examples" / "valid.yaml").read_text()))
PLURALS = {kind.kind: kind.plural for kind in KINDS}


def example(kind: str, name: str | None = None) -> dict[str, Any]:
    for doc in EXAMPLES:
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name):
            return copy.deepcopy(doc)
    raise LookupError(kind)


def test_generated_files_match_models() -> None:
    """Drift: run `python -m asbru_operator.crdgen` after changing a model."""
    assert stale_files(ROOT) == []
    for directory in OUTPUT_DIRS:
        assert sorted(p.name for p in (ROOT / directory).glob("asbru.dev_*.yaml")) == sorted(rendered_files())


def walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for key, sub in (schema.get("properties") or {}).items():
        yield from walk(sub, f"{path}.{key}")
    if "items" in schema:
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("plural", sorted(PLURALS.values()))
def test_schema_is_structural_and_bounded(plural: str) -> None:
    for path, node in walk(load_schema(plural)):
        assert not {"$ref", "anyOf", "allOf", "oneOf", "patternProperties"} & node.keys(), path
        assert node.get("type") or node.get("x-kubernetes-int-or-string"), f"{path} has no type"
        if node.get("type") == "string" and "enum" not in node and path not in {".apiVersion", ".kind"}:
            assert "maxLength" in node, f"{path}: unbounded string"
        if node.get("type") == "array":
            assert "maxItems" in node, f"{path}: unbounded list"
        if "additionalProperties" in node:
            assert "maxProperties" in node, f"{path}: unbounded map"
        if node.get("x-kubernetes-preserve-unknown-fields"):
            assert path in {".metadata", ".spec.pod.affinity", ".spec.options", ".spec.settings"}, path


def test_printer_columns() -> None:
    columns = {kind.kind: [c["name"] for c in kind.columns] for kind in KINDS}
    assert columns["LLMGateway"] == ["Ready", "Programmed", "Replicas", "Revision", "Age"]
    assert columns["LLMProvider"][0] == "Type"


@pytest.mark.parametrize("doc", EXAMPLES, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_valid_examples_are_accepted(doc: dict[str, Any]) -> None:
    assert violations(PLURALS[doc["kind"]], doc) == []


def test_type_and_bound_errors_are_rejected() -> None:
    gateway = example("LLMGateway")
    gateway["spec"]["replicas"] = -1
    gateway["spec"]["service"]["type"] = "Ingress"
    found = violations("llmgateways", gateway)
    assert any("replicas" in v for v in found) and any("Ingress" in v for v in found)


def test_unknown_fields_are_rejected() -> None:
    provider = example("LLMProvider", "openai")
    provider["spec"]["keys"][0]["secretRef"] = "typo"
    assert violations("llmproviders", provider) == ["unknown field .spec.keys[0].secretRef"]


def test_plugin_settings_are_deliberately_open() -> None:
    plugin = example("LLMPlugin")
    plugin["spec"]["settings"]["whatever"] = {"deep": True}
    assert violations("llmplugins", plugin) == []


@pytest.mark.parametrize(("url", "private"), BASE_URLS.items())
def test_private_base_urls_are_rejected_unless_allowed(url: str, private: bool) -> None:
    """The same table as the gateway's network guard (tests/address_forms.py)."""
    provider = example("LLMProvider", "openai")
    provider["spec"]["baseURL"] = url
    found = [v for v in violations("llmproviders", provider) if "allowPrivateNetwork" in v]
    assert len(found) == (1 if private else 0), found
    provider["spec"]["allowPrivateNetwork"] = True
    assert violations("llmproviders", provider) == []


@pytest.mark.parametrize("url", ["ftp://example.com", "file:///etc/passwd", "example.com", "https://"])
def test_non_http_urls_are_rejected(url: str) -> None:
    provider = example("LLMProvider", "openai")
    provider["spec"]["baseURL"] = url
    assert "baseURL must be an http:// or https:// URL with a host" in violations("llmproviders", provider)


def test_base_url_and_service_ref_are_exclusive() -> None:
    provider = example("LLMProvider", "openai")
    provider["spec"]["serviceRef"] = {"name": "vllm"}
    assert violations("llmproviders", provider) == [
        "baseURL and serviceRef are mutually exclusive: set at most one"
    ]


def test_duplicate_key_names_are_rejected() -> None:
    provider = example("LLMProvider", "openai")
    provider["spec"]["keys"][1]["name"] = "primary"
    message = "key names must be unique within a provider: 'primary' is used more than once"
    assert violations("llmproviders", provider) == [message]
    # What kubectl shows: the message and the duplicated name, not just "Duplicate value".
    assert api_server_errors("llmproviders", provider) == [f"spec.keys: Invalid value: {message}"]


def test_backoff_order_is_checked() -> None:
    gateway = example("LLMGateway")
    gateway["spec"]["defaults"]["network"]["backoffInitialSeconds"] = 10
    assert violations("llmgateways", gateway) == ["backoffInitialSeconds must not exceed backoffMaxSeconds"]


def test_gateway_name_length_is_limited() -> None:
    gateway = example("LLMGateway")
    gateway["metadata"]["name"] = "g" * 57
    message = "LLMGateway names are at most 56 characters (owned objects append a suffix)"
    assert api_server_errors("llmgateways", gateway) == [f"metadata.name: Invalid value: {message}"]


@pytest.mark.parametrize("plural", sorted(PLURALS.values()))
def test_every_rule_error_says_where_and_what(plural: str) -> None:
    """The API server drops a rule's message for reason FieldValueDuplicate, and reports a root rule
    without fieldPath at ``<nil>``; a fieldPath it cannot resolve in the schema makes the CRD invalid."""
    schema = load_schema(plural)
    for path, rule in rules(schema):
        assert rule.get("reason") != "FieldValueDuplicate", f"{plural}{path}: {rule['message']}"
        if not path:
            assert rule.get("fieldPath"), f"{plural}: root rule without fieldPath: {rule['message']}"
        if rule.get("fieldPath"):
            node = next(node for node_path, node in walk(schema) if node_path == path)
            assert field_path_resolves(node, rule["fieldPath"]), f"{plural}{path}: {rule['fieldPath']}"


def test_mcp_server_transport_needs_its_address() -> None:
    server = example("LLMMCPServer", "time")
    del server["spec"]["command"]
    assert violations("llmmcpservers", server) == [
        "stdio needs a command; http and sse need a url or a serviceRef"
    ]
    server = example("LLMMCPServer", "github")
    del server["spec"]["url"]
    assert violations("llmmcpservers", server) == [
        "stdio needs a command; http and sse need a url or a serviceRef"
    ]
    server["spec"]["serviceRef"] = {"name": "github-mcp", "port": 8080}
    assert violations("llmmcpservers", server) == []


RULE_TESTS = {
    "stdio needs a command": test_mcp_server_transport_needs_its_address,
    "baseURL and serviceRef are mutually exclusive": test_base_url_and_service_ref_are_exclusive,
    "baseURL must be an http:// or https:// URL": test_non_http_urls_are_rejected,
    "baseURL points at a private": test_private_base_urls_are_rejected_unless_allowed,
    "key names must be unique within a provider": test_duplicate_key_names_are_rejected,
    "backoffInitialSeconds must not exceed": test_backoff_order_is_checked,
    "LLMGateway names are at most 56 characters": test_gateway_name_length_is_limited,
}


def test_every_cel_rule_compiles_and_has_a_rejection_test() -> None:
    """A new rule needs a test here: good object accepted (examples), bad one rejected (RULE_TESTS)."""
    env = celpy.Environment()
    for plural in PLURALS.values():
        for path, rule in rules(load_schema(plural)):
            env.compile(rule["rule"])
            assert rule["message"], path
            known = any(rule["message"].startswith(prefix) for prefix in RULE_TESTS)
            assert known, f"{plural}{path}: no rejection test for {rule['message']!r}"
