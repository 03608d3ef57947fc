"""The operator end to end, in-process, against kmock's Kubernetes API emulator (see ``kmock_cluster``)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import kmock
import orjson

from asbru_operator.crdgen.definitions import KINDS
from asbru_operator.kubeapi import GATEWAYS, MCP_SERVERS, PROVIDERS
from tests.operator import fixtures
from tests.operator.fixtures import NS
from tests.operator.kmock_cluster import (
    CONFIGMAPS,
    DEPLOYMENTS,
    PLUGINS,
    PODS,
    ROLE_BINDINGS,
    ROUTES,
    SECRETS,
    Cluster,
    FakePods,
    RolesFirst,
    condition,
    condition_with,
    eventually,
)


async def test_gateway_renders_owned_objects_and_status(cluster: Cluster, fake_pods: FakePods) -> None:
    await cluster.create(SECRETS, fixtures.secret(**{"api-key": "sk-one"}))
    await cluster.create(PROVIDERS, fixtures.provider())
    await cluster.create(ROUTES, fixtures.route())
    await cluster.create(GATEWAYS, fixtures.gateway(replicas=1))

    config_map = await eventually(lambda: cluster.get(CONFIGMAPS, "gw-config"))
    config = orjson.loads(config_map["data"]["config.json"])
    assert [p["name"] for p in config["providers"]] == ["openai"]
    assert config["providers"][0]["keys"][0]["secret"] == "secret:openai.primary"
    assert "sk-one" not in config_map["data"]["config.json"]
    gateway_secret = await eventually(lambda: cluster.get(SECRETS, "gw-config"))
    assert base64.b64decode(gateway_secret["data"]["openai.primary"]).decode() == "sk-one"
    deployment = await eventually(lambda: cluster.get(DEPLOYMENTS, "gw"))
    assert deployment["metadata"]["ownerReferences"][0]["kind"] == "LLMGateway"
    revision = config_map["metadata"]["annotations"]["asbru.dev/revision"]

    async def accepted() -> dict[str, Any] | None:
        body = await cluster.get(GATEWAYS, "gw")
        ok = condition(body, "ResolvedRefs").get("status") == "True"
        return body if ok and (body or {}).get("status", {}).get("revision") == revision else None

    await eventually(accepted)

    # A pod that serves the rendered revision makes the gateway Programmed and Ready.
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    pod = {"metadata": {"name": "gw-abc", "namespace": NS, "labels": labels}, "status": {"phase": "Running"}}
    await cluster.create(PODS, pod)
    fake_pods.served["gw-abc"] = revision

    async def programmed() -> dict[str, Any] | None:
        body = await cluster.get(GATEWAYS, "gw")
        return body if condition(body, "Ready").get("status") == "True" else None

    body = await eventually(programmed)
    assert condition(body, "Programmed")["message"] == f"1 of 1 pods run revision {revision}"
    assert body["status"]["programmed"] == "1/1"


async def test_secret_rotation_rerenders_gateway_secret(cluster: Cluster) -> None:
    await cluster.create(SECRETS, fixtures.secret(**{"api-key": "sk-old"}))
    await cluster.create(PROVIDERS, fixtures.provider())
    await cluster.create(GATEWAYS, fixtures.gateway())
    first = await eventually(lambda: cluster.get(CONFIGMAPS, "gw-config"))
    template = (await eventually(lambda: cluster.get(DEPLOYMENTS, "gw")))["spec"]["template"]

    new_value = base64.b64encode(b"sk-new").decode()
    await cluster.patch(SECRETS, "openai-keys", {"data": {"api-key": new_value}})

    async def rotated() -> dict[str, Any] | None:
        body = await cluster.get(SECRETS, "gw-config")
        return body if body and body["data"]["openai.primary"] == new_value else None

    await eventually(rotated)
    second = await eventually(lambda: cluster.get(CONFIGMAPS, "gw-config"))
    assert second["data"] == first["data"]  # same config (references only) ...
    assert (
        second["metadata"]["annotations"]["asbru.dev/revision"]
        != first["metadata"]["annotations"]["asbru.dev/revision"]
    )
    assert (await cluster.get(DEPLOYMENTS, "gw"))["spec"]["template"] == template  # ... and no rollout


async def _gateway_secret_holds(cluster: Cluster, value: str) -> dict[str, Any] | None:
    """The gateway's rendered Secret, once one of its entries holds ``value``."""
    body = await cluster.get(SECRETS, "gw-config")
    encoded = base64.b64encode(value.encode()).decode()
    return body if body and encoded in (body.get("data") or {}).values() else None


async def test_a_rotated_redis_password_reaches_the_gateway_secret(cluster: Cluster) -> None:
    """Without a watch on it, a rotated Redis password waited for the next periodic re-render,
    with every gateway locked out of its counters meanwhile."""
    await cluster.create(SECRETS, fixtures.secret("redis", pw="old-password"))
    redis = {"url": "redis://redis:6379/0", "passwordSecretRef": {"name": "redis", "key": "pw"}}
    await cluster.create(GATEWAYS, fixtures.gateway(governance={"redis": redis}))
    await eventually(lambda: _gateway_secret_holds(cluster, "old-password"))

    await cluster.patch(SECRETS, "redis", {"data": {"pw": base64.b64encode(b"new-password").decode()}})
    await eventually(lambda: _gateway_secret_holds(cluster, "new-password"))


async def test_a_rotated_mcp_server_token_reaches_the_gateway_secret(cluster: Cluster) -> None:
    await cluster.create(SECRETS, fixtures.secret("tokens", gh="ghp-old"))
    server = {
        "url": "https://mcp.example.com/mcp",
        "secretHeaders": [
            {"name": "Authorization", "prefix": "Bearer ", "secretKeyRef": {"name": "tokens", "key": "gh"}}
        ],
    }
    await cluster.create(MCP_SERVERS, fixtures.mcp_server("github", **server))
    await cluster.create(GATEWAYS, fixtures.gateway())
    await eventually(lambda: _gateway_secret_holds(cluster, "Bearer ghp-old"))

    await cluster.patch(SECRETS, "tokens", {"data": {"gh": base64.b64encode(b"ghp-new").decode()}})
    await eventually(lambda: _gateway_secret_holds(cluster, "Bearer ghp-new"))


async def test_missing_secret_reports_and_recovers(cluster: Cluster) -> None:
    await cluster.create(PROVIDERS, fixtures.provider(secret="late-keys"))
    await cluster.create(GATEWAYS, fixtures.gateway())

    async def unresolved() -> dict[str, Any] | None:
        cond = condition(await cluster.get(GATEWAYS, "gw"), "ResolvedRefs")
        return cond if cond.get("status") == "False" else None

    cond = await eventually(unresolved)
    assert cond["reason"] == "SecretNotFound"
    assert "late-keys" in cond["message"]
    provider_cond = await eventually(
        lambda: condition_with(cluster, PROVIDERS, "openai", "ResolvedRefs", "False")
    )
    assert "late-keys" in provider_cond["message"]
    assert await served_providers(cluster) == []  # the rest of the config is served meanwhile

    await cluster.create(SECRETS, fixtures.secret("late-keys", **{"api-key": "sk-late"}))
    await eventually(lambda: condition_with(cluster, GATEWAYS, "gw", "ResolvedRefs", "True"))
    assert await served_providers(cluster) == ["openai"]
    await eventually(lambda: condition_with(cluster, PROVIDERS, "openai", "ResolvedRefs", "True"))


async def served_providers(cluster: Cluster) -> list[str]:
    config_map = await eventually(lambda: cluster.get(CONFIGMAPS, "gw-config"))
    return [p["name"] for p in orjson.loads(config_map["data"]["config.json"])["providers"]]


async def served_routes(cluster: Cluster) -> dict[str, list[str]]:
    """Route name -> its targets' models, as the gateway's ConfigMap has them."""
    config_map = await eventually(lambda: cluster.get(CONFIGMAPS, "gw-config"))
    routes = orjson.loads(config_map["data"]["config.json"])["routes"]
    return {r["name"]: [t["model"] for t in r["targets"]] for r in routes}


async def test_broken_members_are_marked_on_their_own_cr_and_do_not_freeze_the_others(
    cluster: Cluster,
) -> None:
    """One provider without its Secret, one route naming an unknown provider: the rest renders and
    keeps updating; each broken resource says why in one line."""
    await cluster.create(SECRETS, fixtures.secret(**{"api-key": "sk-one"}))
    await cluster.create(PROVIDERS, fixtures.provider())
    await cluster.create(PROVIDERS, fixtures.provider("lost", secret="lost-keys"))
    await cluster.create(ROUTES, fixtures.route("chat"))
    await cluster.create(ROUTES, fixtures.route("stray", provider_name="nope"))
    await cluster.create(GATEWAYS, fixtures.gateway())

    async def chat_serves(model: str) -> bool:
        return (await served_routes(cluster)).get("chat") == [model]

    await eventually(lambda: chat_serves("gpt-4o"))
    await cluster.patch(ROUTES, "chat", {"spec": {"targets": [{"provider": "openai", "model": "gpt-4.1"}]}})
    await eventually(lambda: chat_serves("gpt-4.1"))  # updates still flow
    assert await served_providers(cluster) == ["openai"]
    assert set(await served_routes(cluster)) == {"chat"}

    lost = await eventually(lambda: condition_with(cluster, PROVIDERS, "lost", "ResolvedRefs", "False"))
    assert (lost["reason"], lost["message"]) == (
        "SecretNotFound",
        "Secret 'lost-keys' not found (key 'primary')",
    )
    stray = await eventually(lambda: condition_with(cluster, ROUTES, "stray", "ResolvedRefs", "False"))
    assert (stray["reason"], stray["message"]) == ("ProviderNotFound", "LLMProvider 'nope' not found")
    await eventually(lambda: condition_with(cluster, ROUTES, "chat", "Ready", "True"))
    gateway = await eventually(lambda: condition_with(cluster, GATEWAYS, "gw", "ResolvedRefs", "False"))
    assert gateway["message"].startswith("left out of the config (the rest is served): LLMProvider 'lost'")
    assert "LLMRoute 'stray'" in gateway["message"]


async def test_what_pods_would_refuse_is_not_accepted(cluster: Cluster) -> None:
    """An unknown provider type, a plugin settings typo: Accepted=False with the gateway's reason."""
    await cluster.create(PROVIDERS, fixtures.provider(type="openia", keys=[]))
    await cluster.create(PLUGINS, fixtures.plugin(settings={"stream_timing": False}))
    provider = await eventually(lambda: condition_with(cluster, PROVIDERS, "openai", "Accepted", "False"))
    assert provider["reason"] == "UnknownType"
    assert provider["message"].startswith("type 'openia' is not a provider type the gateway knows (known: ")
    plugin = await eventually(lambda: condition_with(cluster, PLUGINS, "telemetry", "Accepted", "False"))
    assert plugin["reason"] == "InvalidSettings"
    assert plugin["message"] == "settings.stream_timing: Extra inputs are not permitted"


async def test_an_invalid_spec_is_reported_in_one_readable_line(cluster: Cluster) -> None:
    """The API server's schema catches most of this; what it lets through is not a pydantic dump."""
    await cluster.create(ROUTES, fixtures.route("r", targets=[{"provider": "openai"}], surprise=1))
    route = await eventually(lambda: condition_with(cluster, ROUTES, "r", "Accepted", "False"))
    assert route["message"] == "targets.0.model: Field required; surprise: Extra inputs are not permitted"


async def test_a_new_gateway_gets_its_role_binding_and_status_at_once(
    kmock: kmock.KubernetesEmulator, cluster: Cluster
) -> None:
    """The API server refuses a RoleBinding before its Role; the operator must not race them (kopf's
    retry after an error would leave the gateway without RoleBinding and status for a minute)."""
    roles = RolesFirst(kmock)
    await cluster.create(SECRETS, fixtures.secret(**{"api-key": "sk-one"}))
    await cluster.create(PROVIDERS, fixtures.provider())
    await cluster.create(GATEWAYS, fixtures.gateway())

    await eventually(lambda: condition_with(cluster, GATEWAYS, "gw", "ResolvedRefs", "True"), within_s=5)
    assert await cluster.get(ROLE_BINDINGS, "gw") is not None
    assert roles.refused == []
    assert roles.written == {"gw"}


def printer_column(kind: str, column: str, body: Mapping[str, Any]) -> Any:
    """What ``kubectl get`` shows in ``column`` for ``body`` (simple ``.a.b`` JSONPaths only)."""
    crd = next(k for k in KINDS if k.kind == kind)
    path = next(c["jsonPath"] for c in crd.columns if c["name"] == column)
    value: Any = body
    for part in path.lstrip(".").split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


async def test_the_route_model_column_shows_the_name_clients_call(cluster: Cluster) -> None:
    """As in examples/quickstart.yaml: no spec.model, so clients call the route's own name."""
    await cluster.create(SECRETS, fixtures.secret(**{"api-key": "sk-one"}))
    await cluster.create(PROVIDERS, fixtures.provider())
    await cluster.create(ROUTES, fixtures.route("chat"))
    await cluster.create(ROUTES, fixtures.route("big", model="meta/llama-3:70b"))

    async def shown(name: str) -> Any:
        return printer_column("LLMRoute", "Model", await cluster.get(ROUTES, name) or {})

    assert await eventually(lambda: shown("chat")) == "chat"
    assert await eventually(lambda: shown("big")) == "meta/llama-3:70b"


async def test_an_mcp_server_left_out_of_the_config_says_why_on_its_own_status(cluster: Cluster) -> None:
    """Before, only the gateway's ResolvedRefs named it; the server's own status stayed empty."""
    server = {
        "url": "https://mcp.example.com/mcp",
        "secretHeaders": [{"name": "Authorization", "secretKeyRef": {"name": "late-token", "key": "t"}}],
    }
    await cluster.create(MCP_SERVERS, fixtures.mcp_server("github", **server))
    await cluster.create(GATEWAYS, fixtures.gateway())
    refs = await eventually(lambda: condition_with(cluster, MCP_SERVERS, "github", "ResolvedRefs", "False"))
    assert refs["reason"] == "SecretNotFound"
    assert "late-token" in refs["message"]

    await cluster.create(SECRETS, fixtures.secret("late-token", t="ghp-late"))
    await eventually(lambda: condition_with(cluster, MCP_SERVERS, "github", "ResolvedRefs", "True"))
    body = await cluster.get(MCP_SERVERS, "github")
    assert condition(body, "Ready")["status"] == "Unknown"  # until a gateway pod reports it connected
