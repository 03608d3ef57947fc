"""CRs -> GatewayConfig: contents, secret references, selection, defaults, determinism."""

from __future__ import annotations

import pytest

from asbru_operator.render.config import RenderError, Sources, UnresolvedRefsError, render_config
from tests.operator import fixtures

SECRETS = {"openai-keys": {"api-key": "sk-one\n"}}


def sources(**overrides: object) -> Sources:
    values: dict[str, object] = {
        "gateway": fixtures.gateway(),
        "providers": [fixtures.provider()],
        "routes": [fixtures.route()],
        "plugins": [fixtures.plugin()],
        "secrets": SECRETS,
    }
    values.update(overrides)
    return Sources(**values)  # type: ignore[arg-type]


def test_keys_become_secret_references_and_values_go_to_secret_data() -> None:
    rendered = render_config(sources())
    provider = rendered.config.providers[0]
    assert provider.keys[0].secret == "secret:openai.primary"
    assert rendered.secret_data == {"openai.primary": "sk-one"}  # trailing newline stripped
    assert b"sk-one" not in rendered.config.canonical_json()


def test_routes_plugins_and_server_settings() -> None:
    rendered = render_config(sources(gateway=fixtures.gateway(drainTimeoutSeconds=45)))
    assert [r.name for r in rendered.config.routes] == ["gpt-4o"]
    assert rendered.config.routes[0].targets[0].provider == "openai"
    assert [(p.name, p.type, p.order) for p in rendered.config.plugins] == [("telemetry", "telemetry", 10)]
    assert rendered.config.plugins[0].settings == {"sampleRate": 0.5}
    assert rendered.config.server.drain_timeout_s == 45


def test_route_model_overrides_its_name() -> None:
    rendered = render_config(sources(routes=[fixtures.route("r1", model="meta/llama-3:70b")]))
    assert rendered.config.routes[0].name == "meta/llama-3:70b"


def test_gateway_defaults_fill_unset_provider_fields_only() -> None:
    gateway = fixtures.gateway(
        defaults={"network": {"maxRetries": 5, "connectTimeoutSeconds": 2}, "pool": {"concurrency": 8}}
    )
    provider = fixtures.provider(network={"maxRetries": 1}, pool={"overflow": "reject"})
    config = render_config(sources(gateway=gateway, providers=[provider])).config.providers[0]
    assert config.network.max_retries == 1  # own value wins
    assert config.network.connect_timeout_s == 2  # gateway default
    assert config.network.request_timeout_s == 600  # contract default
    assert (config.pool.concurrency, config.pool.overflow) == (8, "reject")


def test_service_ref_becomes_cluster_local_url() -> None:
    provider = fixtures.provider(baseURL=None, serviceRef={"name": "vllm", "port": 8000, "path": "/v1"})
    del provider["spec"]["baseURL"]
    config = render_config(sources(providers=[provider])).config.providers[0]
    assert config.base_url == "http://vllm.default.svc:8000/v1"


def test_selectors_pick_providers_routes_and_plugins() -> None:
    other = fixtures.provider("anthropic")
    other["metadata"]["labels"] = {"team": "b"}
    gateway = fixtures.gateway(
        providerSelector={"matchLabels": {"team": "b"}}, routeSelector={"matchLabels": {"x": "y"}}
    )
    rendered = render_config(sources(gateway=gateway, providers=[fixtures.provider(), other]))
    assert [p.name for p in rendered.config.providers] == ["anthropic"]
    assert rendered.config.routes == ()


def test_plugin_gateway_selector_must_match_the_gateway() -> None:
    plugin = fixtures.plugin(
        gatewaySelector={"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}
    )
    assert render_config(sources(plugins=[plugin])).config.plugins == ()


def test_missing_secret_and_key_are_named() -> None:
    with pytest.raises(UnresolvedRefsError, match="Secret 'openai-keys' not found") as missing:
        render_config(sources(secrets={}))
    assert missing.value.missing[0].secret == "openai-keys"
    with pytest.raises(UnresolvedRefsError, match="key 'api-key' not found in Secret 'openai-keys'"):
        render_config(sources(secrets={"openai-keys": {"other": "x"}}))


def test_route_to_unselected_provider_is_a_render_error() -> None:
    with pytest.raises(RenderError, match="unknown provider"):
        render_config(sources(routes=[fixtures.route(provider_name="nope")]))


def test_invalid_spec_is_a_render_error_naming_the_object() -> None:
    with pytest.raises(RenderError, match="LLMProvider 'openai'"):
        render_config(sources(providers=[fixtures.provider(surprise=True)]))


def test_deterministic_regardless_of_input_order() -> None:
    providers = [fixtures.provider("b"), fixtures.provider("a")]
    routes = [fixtures.route("r2", provider_name="a"), fixtures.route("r1", provider_name="b")]
    one = render_config(sources(providers=providers, routes=routes))
    two = render_config(sources(providers=providers[::-1], routes=routes[::-1]))
    assert one.config.canonical_json() == two.config.canonical_json()
    assert one.served_revision == two.served_revision
    assert [p.name for p in one.config.providers] == ["a", "b"]


def test_key_rotation_changes_served_revision_not_config() -> None:
    before = render_config(sources())
    after = render_config(sources(secrets={"openai-keys": {"api-key": "sk-two"}}))
    assert before.config.revision == after.config.revision
    assert before.served_revision != after.served_revision


def test_the_private_network_guard_is_rendered_for_the_gateway_to_enforce() -> None:
    guarded = render_config(sources()).config.providers[0]
    assert guarded.allow_private_network is False
    opted_in = fixtures.provider(baseURL="http://10.0.0.5/v1", allowPrivateNetwork=True)
    assert render_config(sources(providers=[opted_in])).config.providers[0].allow_private_network is True
    in_cluster = fixtures.provider(serviceRef={"name": "vllm", "port": 8000})
    del in_cluster["spec"]["baseURL"]
    assert render_config(sources(providers=[in_cluster])).config.providers[0].allow_private_network is True
