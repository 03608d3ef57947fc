"""Loading a ``GatewayConfig``: YAML and JSON, errors that name the field, revisions, secrets, defaults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from asbru_gateway.config.loader import load_config_file, load_config_text, parse_config
from asbru_gateway.config.model import SCHEMA_VERSION, GatewayConfig, Overflow
from asbru_gateway.config.secrets import SecretResolver, served_revision
from asbru_gateway.errors import ConfigError
from asbru_gateway.providers.discovery import default_config

YAML_CONFIG = """\
schemaVersion: asbru.dev/v1alpha1
server:
  max_body_bytes: 65536
providers:
  - name: openai
    type: openai
    keys:
      - {name: main, secret: "env:OPENAI_API_KEY", weight: 3}
      - {name: spare, secret: "secret:openai-spare"}
    pool: {concurrency: 8, queue_size: 16, overflow: reject}
    network: {request_timeout_s: 30, headers: {OpenAI-Organization: org-1}}
  - name: local
    type: echo
    models: [echo]
routes:
  - name: smart
    targets:
      - {provider: openai, model: gpt-4o}
      - {provider: local, model: echo, priority: 1}
    fallback_on: [rate_limited, timeout]
plugins:
  - {name: telemetry, type: telemetry, order: -100}
"""


def _data() -> dict[str, Any]:
    data = yaml.safe_load(YAML_CONFIG)
    assert isinstance(data, dict)
    return data


def _error(data: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        parse_config(data, source="test.yaml")
    message = raised.value.message
    assert message.startswith("test.yaml: ")
    return message


# --- parsing --------------------------------------------------------------------------------------


def test_yaml_parses_into_the_typed_config() -> None:
    config = load_config_text(YAML_CONFIG)
    assert config.schema_version == SCHEMA_VERSION
    assert config.server.max_body_bytes == 65536
    openai = config.provider("openai")
    assert openai is not None
    assert [(k.name, k.secret, k.weight) for k in openai.keys] == [
        ("main", "env:OPENAI_API_KEY", 3.0),
        ("spare", "secret:openai-spare", 1.0),
    ]
    assert (openai.pool.concurrency, openai.pool.queue_size, openai.pool.overflow) == (8, 16, Overflow.REJECT)
    assert openai.network.request_timeout_s == 30
    assert openai.network.headers == {"OpenAI-Organization": "org-1"}
    assert openai.network.max_retries == 2  # defaults fill what the file leaves out
    assert config.provider("nope") is None
    (route,) = config.routes
    assert [(t.provider, t.model, t.priority) for t in route.targets] == [
        ("openai", "gpt-4o", 0),
        ("local", "echo", 1),
    ]
    assert [str(trigger) for trigger in route.fallback_on] == ["rate_limited", "timeout"]
    assert config.plugins[0].order == -100


def test_json_parses_to_the_same_config(tmp_path: Path) -> None:
    text = json.dumps(_data())
    from_json = load_config_text(text)
    assert from_json == load_config_text(YAML_CONFIG)
    assert load_config_text(text.encode()) == from_json  # bytes, as files are read
    json_file = tmp_path / "gateway.json"
    json_file.write_text(text)
    yaml_file = tmp_path / "gateway.yaml"
    yaml_file.write_text(YAML_CONFIG)
    assert load_config_file(json_file) == load_config_file(yaml_file) == from_json


def test_empty_mapping_is_a_valid_config_and_schema_version_is_optional() -> None:
    config = load_config_text("{}")
    assert config.providers == () and config.routes == ()
    assert config.schema_version == SCHEMA_VERSION
    assert parse_config({"schema_version": SCHEMA_VERSION}) == config


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text", "42", "[]"])
def test_top_level_must_be_a_mapping(text: str) -> None:
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config_text(text, source="test.yaml")


@pytest.mark.parametrize("text", ["providers: [", '{"providers": [}', "a: b: c", "{'single': 'quotes'}"])
def test_syntax_errors_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^test.yaml: not valid YAML/JSON: .*line \d"):
        load_config_text(text, source="test.yaml")


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match="cannot read") as raised:
        load_config_file(missing)
    assert str(missing) in raised.value.message


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("providers:\n  - name: openai\n    type: openai\n    pool: {concurrency: 0}\n")
    with pytest.raises(ConfigError) as raised:
        load_config_file(path)
    assert raised.value.message.startswith(f"{path}: providers.0.pool.concurrency: ")


# --- validation errors name the field -------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "location"),
    [
        (("providers", 0, "pool", "concurrency"), 0, "providers.0.pool.concurrency"),
        (("providers", 0, "pool", "concurrency"), "many", "providers.0.pool.concurrency"),
        (("providers", 0, "pool", "overflow"), "drop", "providers.0.pool.overflow"),
        (("providers", 1, "name"), "Local_Echo", "providers.1.name"),
        (("providers", 0, "base_url"), "ftp://example.com", "providers.0.base_url"),
        (("providers", 0, "keys", 1, "secret"), "plain-value", "providers.0.keys.1.secret"),
        (("providers", 0, "keys", 0, "weight"), -1, "providers.0.keys.0.weight"),
        (("providers", 0, "network", "request_timeout_s"), 0, "providers.0.network.request_timeout_s"),
        (("routes", 0, "targets"), [], "routes.0.targets"),
        (("routes", 0, "fallback_on", 0), "whenever", "routes.0.fallback_on.0"),
        (("server", "max_body_bytes"), 10, "server.max_body_bytes"),
    ],
)
def test_validation_error_names_the_field_path(path: tuple[Any, ...], value: Any, location: str) -> None:
    data = _data()
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    message = _error(data)
    assert f"{location}: " in message
    assert message.count(": ") >= 2  # "source: location: what is wrong"


def test_several_errors_are_all_reported() -> None:
    data = _data()
    data["providers"][0]["pool"]["concurrency"] = 0
    data["server"]["max_body_bytes"] = 1
    message = _error(data)
    assert "providers.0.pool.concurrency" in message and "server.max_body_bytes" in message


@pytest.mark.parametrize(
    ("path", "field", "location"),
    [
        ((), "providerz", "providerz"),
        (("providers", 0), "colour", "providers.0.colour"),
        (("providers", 0, "pool"), "concurrancy", "providers.0.pool.concurrancy"),
        (("routes", 0, "targets", 1), "wieght", "routes.0.targets.1.wieght"),
        (("server",), "port", "server.port"),
    ],
)
def test_unknown_field_is_rejected_by_name(path: tuple[Any, ...], field: str, location: str) -> None:
    data = _data()
    node: Any = data
    for part in path:
        node = node[part]
    node[field] = 1
    message = _error(data)
    assert f"{location}: Extra inputs are not permitted" in message


@pytest.mark.parametrize("version", ["asbru.dev/v1", "asbru.dev/v2alpha1", "v1alpha1", "", None, 1])
def test_other_schema_version_is_refused(version: Any) -> None:
    data = _data()
    data["schemaVersion"] = version
    message = _error(data)
    assert "schemaVersion" in message and repr(version) in message and SCHEMA_VERSION in message


def test_duplicate_provider_names_are_rejected() -> None:
    data = _data()
    data["providers"].append({"name": "openai", "type": "groq"})
    assert "duplicate provider name 'openai'" in _error(data)


def test_duplicate_route_and_key_names_are_rejected() -> None:
    data = _data()
    data["routes"].append({"name": "smart", "targets": [{"provider": "local", "model": "x"}]})
    assert "duplicate route name 'smart'" in _error(data)
    data = _data()
    data["providers"][0]["keys"][1]["name"] = "main"
    assert "key names must be unique" in _error(data)


def test_route_to_unknown_provider_is_rejected() -> None:
    data = _data()
    data["routes"][0]["targets"].append({"provider": "anthropic", "model": "claude"})
    assert "route 'smart' targets unknown provider 'anthropic'" in _error(data)


@pytest.mark.parametrize(
    "header", ["Authorization", "authorization", "API-Key", "x-api-key", "X-Goog-Api-Key"]
)
def test_credential_headers_are_rejected(header: str) -> None:
    data = _data()
    data["providers"][0]["network"]["headers"] = {"X-Trace": "1", header: "Bearer value"}
    message = _error(data)
    assert "providers.0.network.headers" in message and repr(header) in message
    assert "Bearer value" not in message


# --- revision -------------------------------------------------------------------------------------


def test_revision_is_stable_for_equal_configs() -> None:
    config = load_config_text(YAML_CONFIG)
    assert len(config.revision) == 16
    assert config.revision == load_config_text(YAML_CONFIG).revision
    assert config.revision == load_config_text(json.dumps(_data(), indent=4)).revision
    # Key order and defaults spelled out do not matter: the content does.
    reordered = dict(reversed(list(_data().items())))
    reordered["providers"][1]["pool"] = {"concurrency": 64, "queue_size": 256}
    reordered["providers"][0] = dict(reversed(list(reordered["providers"][0].items())))
    assert parse_config(reordered).revision == config.revision
    assert GatewayConfig.model_validate_json(config.canonical_json()).revision == config.revision


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("providers", 0, "pool", "concurrency"), 9),
        (("providers", 0, "keys", 0, "secret"), "env:OTHER_KEY"),
        (("routes", 0, "targets", 0, "model"), "gpt-4o-mini"),
        (("server", "max_body_bytes"), 65537),
        (("plugins", 0, "enabled"), False),
    ],
)
def test_revision_differs_for_different_configs(path: tuple[Any, ...], value: Any) -> None:
    base = parse_config(_data()).revision
    data = _data()
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    assert parse_config(data).revision != base


def test_route_order_is_part_of_the_revision() -> None:
    data = _data()
    data["routes"].append({"name": "other", "targets": [{"provider": "local", "model": "x"}]})
    swapped = _data()
    swapped["routes"] = list(reversed(data["routes"]))
    assert parse_config(data).revision != parse_config(swapped).revision


# --- secret references ----------------------------------------------------------------------------


def test_secret_references_resolve(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("  from-a-file\n")
    resolver = SecretResolver(
        mapping={"openai-spare": "from-the-secret"}, environ={"OPENAI_API_KEY": "from-env"}
    )
    assert resolver.resolve("env:OPENAI_API_KEY").reveal() == "from-env"
    assert resolver.resolve(f"file:{key_file}").reveal() == "from-a-file"  # whitespace trimmed
    assert resolver.resolve("secret:openai-spare").reveal() == "from-the-secret"


def test_every_reference_in_a_loaded_config_resolves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "from-real-env")
    config = load_config_text(YAML_CONFIG)
    resolver = SecretResolver(mapping={"openai-spare": "spare-value"})  # environ: os.environ
    provider = config.provider("openai")
    assert provider is not None
    assert [resolver.resolve(key.secret).reveal() for key in provider.keys] == [
        "from-real-env",
        "spare-value",
    ]


@pytest.mark.parametrize(
    ("ref", "says"),
    [
        ("env:ASBRU_TEST_UNSET_VARIABLE", "environment variable is not set"),
        ("secret:absent-key", "not found"),
        ("file:/nonexistent/asbru/key", "No such file"),
        ("vault:kv/key", "unknown scheme"),
        ("env:EMPTY", "empty"),
        ("secret:empty", "empty"),
    ],
)
def test_unresolvable_reference_names_the_reference(ref: str, says: str) -> None:
    resolver = SecretResolver(mapping={"empty": ""}, environ={"EMPTY": ""})
    with pytest.raises(ConfigError) as raised:
        resolver.resolve(ref)
    assert repr(ref) in raised.value.message
    assert says in raised.value.message


def test_served_revision_follows_secret_changes() -> None:
    revision = load_config_text(YAML_CONFIG).revision
    assert served_revision(revision, {}) == revision
    one = served_revision(revision, {"openai-spare": "v1"})
    assert one != revision and len(one) == 16
    assert served_revision(revision, {"openai-spare": "v1"}) == one
    assert served_revision(revision, {"openai-spare": "v2"}) != one  # a rotated key
    assert served_revision(revision, {"openai-spare": "v1", "extra": "x"}) != one
    assert served_revision(revision, {"other-name": "v1"}) != one
    assert served_revision("0" * 16, {"openai-spare": "v1"}) != one
    two = {"a": "1", "b": "2"}
    assert served_revision(revision, two) == served_revision(revision, dict(reversed(list(two.items()))))
    # The digest is a hash of the values: no value shows through.
    digest = SecretResolver(mapping={"openai-spare": "a-long-secret-value"}).digest()
    assert len(digest) == 16 and "secret" not in digest


# --- the embedded default -------------------------------------------------------------------------


def _providers(environ: dict[str, str]) -> dict[str, Any]:
    return {p.name: p for p in default_config(environ).providers}


def test_default_without_keys_is_echo_only() -> None:
    config = default_config({})
    (echo,) = config.providers
    assert (echo.name, echo.type, echo.models) == ("echo", "echo", ("echo",))
    assert echo.options == {"latency_ms": 0.0}
    assert [(p.name, p.type) for p in config.plugins] == [("telemetry", "telemetry")]
    assert config.routes == ()
    assert default_config({}).revision == config.revision


def test_default_adds_openai_for_its_key_as_a_reference() -> None:
    environ = {"OPENAI_API_KEY": "sk-real-key-value-123456"}
    config = default_config(environ)
    providers = {p.name: p for p in config.providers}
    assert set(providers) == {"echo", "openai"}
    openai = providers["openai"]
    assert openai.type == "openai"
    assert openai.base_url is None  # the type's default: https://api.openai.com/v1
    assert [(k.name, k.secret) for k in openai.keys] == [("env", "env:OPENAI_API_KEY")]
    assert b"sk-real-key-value" not in config.canonical_json()
    assert default_config({"OPENAI_API_KEY": "another-value"}).revision == config.revision


def test_default_honours_openai_base_url() -> None:
    providers = _providers({"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://127.0.0.1:9999/v1/"})
    assert providers["openai"].base_url == "http://127.0.0.1:9999/v1"
    assert "openai" not in _providers({"OPENAI_BASE_URL": "http://127.0.0.1:9999/v1"})  # no key, no provider


def test_default_adds_anthropic_for_its_key() -> None:
    providers = _providers({"ANTHROPIC_API_KEY": "k", "OPENAI_API_KEY": "k"})
    assert set(providers) == {"echo", "anthropic", "openai"}
    assert providers["anthropic"].type == "anthropic"
    assert providers["anthropic"].keys[0].secret == "env:ANTHROPIC_API_KEY"
    assert providers["anthropic"].base_url is None


def test_default_skips_azure_key_without_endpoint() -> None:
    assert set(_providers({"AZURE_OPENAI_API_KEY": "k"})) == {"echo"}
    providers = _providers(
        {"AZURE_OPENAI_API_KEY": "k", "AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com"}
    )
    assert providers["azure"].base_url == "https://x.openai.azure.com"
    assert providers["azure"].keys[0].secret == "env:AZURE_OPENAI_API_KEY"


def test_default_ignores_empty_keys_and_reads_echo_latency() -> None:
    assert set(_providers({"OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": ""})) == {"echo"}
    assert _providers({"ASBRU_ECHO_LATENCY_MS": "25"})["echo"].options == {"latency_ms": 25.0}


def test_default_knows_other_openai_compatible_providers() -> None:
    providers = _providers({"GROQ_API_KEY": "k", "GEMINI_API_KEY": "k"})
    assert set(providers) == {"echo", "groq", "gemini"}
    assert providers["groq"].keys[0].secret == "env:GROQ_API_KEY"
