"""LLMVirtualKey end to end on kmock: CR -> owned Secret with a generated key -> only a salted hash
in the gateway's ConfigMap -> a real gateway pod (kube source + management API) enforcing it ->
spend/budget/remaining and conditions in the key's and team's status. No key value anywhere but
in its own Secret."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from typing import Any

import httpx
import orjson

from asbru_gateway.app import AppSettings
from asbru_operator.kubeapi import GATEWAYS, PROVIDERS, TEAMS, VIRTUAL_KEYS, ApiResource
from tests.gateway_server import RunningGateway, run_gateway
from tests.operator import fixtures
from tests.operator.fixtures import NS
from tests.operator.kmock_cluster import PODS, SECRETS, Cluster, condition, condition_with, eventually

ROUTES = ApiResource("asbru.dev", "v1alpha1", "llmroutes")
CONFIGMAPS = ApiResource("", "v1", "configmaps")
DEPLOYMENTS = ApiResource("apps", "v1", "deployments")


def _key(name: str = "alice", **spec: Any) -> dict[str, Any]:
    body = {
        "team": "eng",
        "budgets": [{"period": "day", "tokens": 200}],
        "rateLimits": {"requestsPerMinute": 100},
    }
    return {
        "apiVersion": "asbru.dev/v1alpha1",
        "kind": "LLMVirtualKey",
        "metadata": {"name": name, "namespace": NS},
        "spec": {**body, **spec},
    }


TEAM = {
    "apiVersion": "asbru.dev/v1alpha1",
    "kind": "LLMTeam",
    "metadata": {"name": "eng", "namespace": NS},
    "spec": {"rateLimits": {"requestsPerDay": 1000}, "budgets": [{"period": "month", "usd": 10}]},
}


def _decoded(secret: dict[str, Any] | None, key: str) -> str:
    return base64.b64decode((secret or {})["data"][key]).decode()


async def _status_with(cluster: Cluster, resource: ApiResource, name: str, field: str, value: str) -> Any:
    body = await cluster.get(resource, name)
    return body if ((body or {}).get("status") or {}).get(field) == value else None


async def test_virtual_key_cr_to_hashed_config_enforcement_and_status(
    control_plane: tuple[Cluster, dict[str, RunningGateway]],
) -> None:
    cluster, pods = control_plane
    with contextlib.ExitStack() as stack:
        try:
            await _scenario(cluster, pods, stack)
        finally:
            await asyncio.to_thread(stack.close)


async def _scenario(cluster: Cluster, pods: dict[str, RunningGateway], stack: contextlib.ExitStack) -> None:
    await cluster.create(SECRETS, fixtures.secret("echo-keys", **{"api-key": "sk-echo-000000"}))
    await cluster.create(PROVIDERS, fixtures.provider("echo", secret="echo-keys", type="echo", baseURL=None))
    await cluster.create(
        ROUTES, fixtures.route("chat", provider_name="echo", targets=[{"provider": "echo", "model": "m"}])
    )
    await cluster.create(TEAMS, TEAM)
    await cluster.create(VIRTUAL_KEYS, _key())
    await cluster.create(GATEWAYS, fixtures.gateway(replicas=1, governance={"requireVirtualKey": True}))

    owned = await eventually(lambda: cluster.get(SECRETS, "alice-virtual-key"))
    value = _decoded(owned, "key")
    assert value.startswith("sk-asbru-") and len(value) > 40
    assert owned["metadata"]["ownerReferences"][0]["kind"] == "LLMVirtualKey"
    key_body = await eventually(
        lambda: _status_with(cluster, VIRTUAL_KEYS, "alice", "secretName", "alice-virtual-key")
    )

    async def rendered() -> dict[str, Any] | None:
        config_map = await cluster.get(CONFIGMAPS, "gw-config")
        text = (config_map or {}).get("data", {}).get("config.json", "")
        return orjson.loads(text) if '"virtual_keys":[{' in text else None

    config = await eventually(rendered)
    (entry,) = config["governance"]["virtual_keys"]
    assert entry["name"] == "alice" and entry["hash"].startswith("sha256:") and entry["team"] == "eng"
    assert config["governance"]["teams"][0]["name"] == "eng"
    gateway_secret = await eventually(lambda: cluster.get(SECRETS, "gw-config"))
    token = _decoded(gateway_secret, "admin-token")
    deployment = await eventually(lambda: cluster.get(DEPLOYMENTS, "gw"))
    env = {item["name"]: item for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ASBRU_ADMIN_PORT"]["value"] == "9090"
    assert env["ASBRU_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "gw-config",
        "key": "admin-token",
    }
    gateway = await cluster.get(GATEWAYS, "gw")
    assert condition(gateway, "Degraded")["status"] == "False"

    labels = deployment["spec"]["template"]["metadata"]["labels"]
    settings = AppSettings(kube_source=f"{NS}/gw-config", admin_port=0, admin_token=token, shutdown_drain_s=1)
    running = await asyncio.to_thread(stack.enter_context, run_gateway(settings=settings))
    pods["gw-0"] = running
    await cluster.create(
        PODS,
        {
            "metadata": {"name": "gw-0", "namespace": NS, "labels": labels},
            "status": {"phase": "Running", "podIP": "127.0.0.1"},
        },
    )
    body = {"model": "chat", "messages": [{"role": "user", "content": "one two three"}]}
    async with httpx.AsyncClient(base_url=running.url, timeout=10) as client:

        async def served() -> bool:
            response = await client.post("/v1/chat/completions", json=body, headers={"x-api-key": value})
            return response.status_code == 200

        await eventually(served)
        for _ in range(2):
            assert (
                await client.post("/v1/chat/completions", json=body, headers={"x-api-key": value})
            ).status_code == 200
        refused = await client.post("/v1/chat/completions", json=body)
        assert refused.status_code == 401

        key_body = await eventually(
            lambda: _status_with(cluster, VIRTUAL_KEYS, "alice", "spend", "18 tokens"), 20
        )
        assert key_body["status"]["budget"] == "200 tokens/day"
        assert key_body["status"]["remaining"] == "182 tokens"
        assert condition(key_body, "Ready")["status"] == "True", key_body["status"]["conditions"]
        team = await eventually(lambda: _status_with(cluster, TEAMS, "eng", "budget", "$10.00/month"), 20)
        assert team["status"]["spend"] == "$0.00"

        # Rotation: the key now takes its value from the user's Secret; the old value stops working.
        await cluster.create(SECRETS, fixtures.secret("alice-own", key="sk-user-chosen-0123456789"))
        await cluster.patch(
            VIRTUAL_KEYS, "alice", {"spec": {"secretRef": {"name": "alice-own", "key": "key"}}}
        )

        async def rotated() -> bool:
            old = await client.post("/v1/chat/completions", json=body, headers={"x-api-key": value})
            return old.status_code == 401

        await eventually(rotated, 20)
        new = await client.post(
            "/v1/chat/completions", json=body, headers={"authorization": "Bearer sk-user-chosen-0123456789"}
        )
        assert new.status_code == 200

    # Nothing but the key's own Secrets holds a value: not the ConfigMap, not any status.
    everything = [await cluster.get(CONFIGMAPS, "gw-config"), await cluster.get(SECRETS, "gw-config")]
    everything += [
        await cluster.get(VIRTUAL_KEYS, "alice"),
        await cluster.get(TEAMS, "eng"),
        await cluster.get(GATEWAYS, "gw"),
    ]
    text = orjson.dumps(everything).decode()
    for secret_value in (value, "sk-user-chosen-0123456789"):
        assert secret_value not in text
        assert base64.b64encode(secret_value.encode()).decode() not in text

    await cluster.patch(GATEWAYS, "gw", {"spec": {"replicas": 2}})

    async def degraded() -> dict[str, Any] | None:
        cond = condition(await cluster.get(GATEWAYS, "gw"), "Degraded")
        return cond if cond.get("status") == "True" else None

    cond = await eventually(degraded)
    assert cond["reason"] == "PerReplicaLimits"


async def test_a_key_left_out_of_the_config_says_why_on_its_own_status(cluster: Cluster) -> None:
    """Before, such a key was named only in the gateway's ResolvedRefs while its own status said
    "the key is accepted": ``kubectl get llmvirtualkeys`` showed nothing wrong."""
    await cluster.create(GATEWAYS, fixtures.gateway(replicas=1, governance={"requireVirtualKey": True}))
    late_ref = {"name": "late-key", "key": "value"}
    await cluster.create(VIRTUAL_KEYS, _key("late", secretRef=late_ref, team=None))
    await cluster.create(VIRTUAL_KEYS, _key("orphan", team="nobody"))

    late = await eventually(lambda: condition_with(cluster, VIRTUAL_KEYS, "late", "ResolvedRefs", "False"))
    assert late["reason"] == "SecretNotFound"
    assert "late-key" in late["message"]
    orphan = await eventually(
        lambda: condition_with(cluster, VIRTUAL_KEYS, "orphan", "ResolvedRefs", "False")
    )
    assert orphan["reason"] == "TeamNotFound"
    assert "nobody" in orphan["message"]

    # The key's Secret appears: the key says it is served, with no change to the key itself.
    await cluster.create(SECRETS, fixtures.secret("late-key", value="vk-late-0123456789"))
    await eventually(lambda: condition_with(cluster, VIRTUAL_KEYS, "late", "ResolvedRefs", "True"))
    assert condition(await cluster.get(VIRTUAL_KEYS, "late"), "Accepted")["status"] == "True"
