"""CRs -> GatewayConfig: contents, secret references, selection, defaults, determinism."""

from __future__ import annotations

import orjson
import pytest

from asbru_gateway.config.loader import parse_config
from asbru_gateway.config.model import SCHEMA_MINOR
from asbru_operator.render.config import Problem, RenderError, Sources, render_config
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
    assert rendered.config.plugins[0].settings == {"stream_timings": False}
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
    assert config.network.request_timeout_s == 120  # contract default
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


def test_a_provider_whose_secret_or_key_is_missing_is_left_out_and_named() -> None:
    rendered = render_config(sources(secrets={}, routes=[]))
    assert rendered.config.providers == ()
    assert rendered.left_out == (
        Problem(
            "LLMProvider", "openai", "SecretNotFound", "Secret 'openai-keys' not found (key 'primary')", True
        ),
    )
    rendered = render_config(sources(secrets={"openai-keys": {"other": "x"}}, routes=[]))
    assert rendered.left_out[0].message == "key 'api-key' not found in Secret 'openai-keys' (key 'primary')"


def test_one_broken_provider_leaves_the_others_and_their_routes_served() -> None:
    broken = fixtures.provider("broken", secret="missing-keys")
    routes = [fixtures.route("gpt-4o"), fixtures.route("other", provider_name="broken")]
    rendered = render_config(sources(providers=[fixtures.provider(), broken], routes=routes))
    assert [p.name for p in rendered.config.providers] == ["openai"]
    assert [r.name for r in rendered.config.routes] == ["gpt-4o"]
    assert [(p.kind, p.name, p.reason) for p in rendered.left_out] == [
        ("LLMProvider", "broken", "SecretNotFound"),
        ("LLMRoute", "other", "ProviderNotServed"),
    ]


def test_a_route_keeps_the_targets_whose_provider_is_served() -> None:
    route = fixtures.route(
        "chat",
        targets=[{"provider": "openai", "model": "a"}, {"provider": "nope", "model": "b", "priority": 1}],
    )
    rendered = render_config(sources(routes=[route]))
    assert [t.provider for t in rendered.config.routes[0].targets] == ["openai"]
    assert (
        rendered.left_out[0].message
        == "LLMProvider 'nope' not served by this gateway (serving the other targets)"
    )


def test_a_route_to_an_unknown_provider_is_left_out() -> None:
    rendered = render_config(sources(routes=[fixtures.route(provider_name="nope")]))
    assert rendered.config.routes == ()
    assert rendered.left_out[0].reason == "ProviderNotServed"


def test_two_routes_claiming_one_model_keep_the_first() -> None:
    routes = [fixtures.route("b", model="chat"), fixtures.route("a", model="chat")]
    rendered = render_config(sources(routes=routes))
    assert [r.name for r in rendered.config.routes] == ["chat"]
    assert rendered.left_out == (
        Problem("LLMRoute", "b", "Conflicted", "model 'chat' is already served by LLMRoute 'a'"),
    )


def test_an_invalid_spec_is_left_out_in_one_readable_line() -> None:
    rendered = render_config(sources(providers=[fixtures.provider(surprise=True)], routes=[]))
    assert rendered.left_out == (
        Problem("LLMProvider", "openai", "Invalid", "surprise: Extra inputs are not permitted"),
    )


def test_what_the_gateway_would_refuse_is_left_out() -> None:
    """An unknown provider type, a plugin settings typo, a private default address."""
    unknown = fixtures.provider(type="openia")
    typo = fixtures.plugin(settings={"stream_timing": False})
    local = fixtures.provider("local", type="ollama", keys=[])
    del local["spec"]["baseURL"]
    rendered = render_config(sources(providers=[unknown, local], routes=[], plugins=[typo]))
    assert (rendered.config.providers, rendered.config.plugins) == ((), ())
    reasons = {(p.name, p.reason): p.message for p in rendered.left_out}
    assert reasons[("openai", "UnknownType")].startswith(
        "type 'openia' is not a provider type the gateway knows"
    )
    assert "settings.stream_timing:" in reasons[("telemetry", "InvalidSettings")]
    assert "defaults to http://127.0.0.1:11434/v1" in reasons[("local", "PrivateNetwork")]


def test_an_invalid_gateway_spec_fails_the_render_in_one_line() -> None:
    with pytest.raises(RenderError, match=r"^LLMGateway 'gw': replicas: Input should be greater") as error:
        render_config(sources(gateway=fixtures.gateway(replicas=-1)))
    assert "\n" not in str(error.value)


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


def test_the_config_is_rendered_for_the_oldest_schema_the_pods_read() -> None:
    """Old pods read it strictly (no field they do not know), and compute the same revision."""
    old = render_config(sources(), schema_minor=0)
    written = orjson.loads(old.config.canonical_json())
    assert "schemaMinor" not in written
    assert "allow_private_network" not in written["providers"][0]
    assert parse_config(written).revision == old.config.revision
    current = orjson.loads(render_config(sources()).config.canonical_json())
    assert current["schemaMinor"] == SCHEMA_MINOR
    assert current["providers"][0]["allow_private_network"] is False
