"""The operator end to end, in-process, against kmock's Kubernetes API emulator.

kopf runs as a task against kmock's URL; the test creates custom resources and Secrets through
the API (so watch events flow) and waits on observable state with timeouts, never fixed sleeps.
Gateway pods are Pod objects created by the test; their /readyz is a local aiohttp app, reached
through the operator's injectable pod-address function.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.web
import kmock
import kopf
import orjson
import pytest
import yaml

from asbru_operator.context import MEMO_KEY, OperatorContext
from asbru_operator.handlers import build_registry
from asbru_operator.kubeapi import GATEWAYS, PROVIDERS, ApiResource, KubeApi
from tests.operator import fixtures
from tests.operator.fixtures import NS

CRDS = Path(__file__).parents[2] / "crds"
CONFIGMAPS = ApiResource("", "v1", "configmaps")
SECRETS = ApiResource("", "v1", "secrets")
DEPLOYMENTS = ApiResource("apps", "v1", "deployments")
PODS = ApiResource("", "v1", "pods")


def register_crds(server: kmock.KubernetesEmulator) -> None:
    """Make kmock's discovery know the builtin kinds and our CRDs (as generated)."""
    with warnings.catch_warnings():  # kmock 0.8 uses importlib.resources.read_binary (deprecated)
        warnings.simplefilter("ignore", DeprecationWarning)
        server.resources.load_bundled()
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        names, version = crd["spec"]["names"], crd["spec"]["versions"][0]
        server.resources[f"{crd['spec']['group']}/{version['name']}/{names['plural']}"] = kmock.ResourceInfo(
            kind=names["kind"],
            singular=names["singular"],
            namespaced=True,
            verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
            shortnames=set(names["shortNames"]),
            categories=set(names["categories"]),
            subresources=set(version["subresources"]),
        )


class Cluster:
    """Test-side access: create/patch/delete through HTTP, read through the operator's own client."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url, self.session, self.api = url, session, KubeApi(url)

    async def create(self, resource: ApiResource, body: Mapping[str, Any]) -> None:
        async with self.session.post(self.url + resource.path(NS), data=orjson.dumps(body)) as response:
            assert response.status < 300, await response.text()

    async def patch(self, resource: ApiResource, name: str, patch: Mapping[str, Any]) -> None:
        headers = {"Content-Type": "application/merge-patch+json"}
        url = self.url + resource.path(NS, name)
        async with self.session.patch(url, data=orjson.dumps(patch), headers=headers) as response:
            assert response.status < 300, await response.text()

    async def get(self, resource: ApiResource, name: str) -> dict[str, Any] | None:
        return await self.api.get(resource, NS, name)


async def eventually(probe: Callable[[], Awaitable[Any]], within_s: float = 15.0) -> Any:
    """Poll ``probe`` until it returns something truthy; fail after ``within_s`` seconds."""
    async with asyncio.timeout(within_s):
        while True:
            value = await probe()
            if value:
                return value
            await asyncio.sleep(0.05)


def condition(body: Mapping[str, Any] | None, kind: str) -> dict[str, Any]:
    for cond in ((body or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    return {}


@pytest.fixture
async def readyz() -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A fake gateway /readyz per pod name; the test sets which revision each pod serves."""
    served: dict[str, str] = {}

    async def handle(request: aiohttp.web.Request) -> aiohttp.web.Response:
        revision = served.get(request.match_info["pod"])
        if revision is None:
            return aiohttp.web.json_response({"status": "starting"}, status=503)
        return aiohttp.web.json_response({"status": "ready", "revision": revision})

    app = aiohttp.web.Application()
    app.router.add_get("/{pod}/readyz", handle)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", served
    await runner.cleanup()


def run_operator(
    ctx: OperatorContext, stop: threading.Event, ready: threading.Event, usage_interval_s: float = 10.0
) -> None:
    """The operator in its own thread and event loop, as kopf's own KopfRunner does: at exit kopf
    cancels every task it did not start with, which would include pytest's fixture teardown."""
    settings = kopf.OperatorSettings()
    # kmock 0.8 cannot serve the cluster-scoped /api/v1/namespaces (its path parser takes it for a
    # namespace prefix), so kopf's namespace/CRD scanning is off; the namespace is given exactly.
    settings.scanning.disabled = True
    asyncio.run(
        kopf.operator(
            registry=build_registry(probe_interval_s=0.2, usage_interval_s=usage_interval_s),
            settings=settings,
            standalone=True,
            namespaces=[NS],
            memo=kopf.Memo({MEMO_KEY: ctx}),
            stop_flag=stop,
            ready_flag=ready,
        )
    )


@pytest.fixture
async def cluster(
    kmock: kmock.KubernetesEmulator, readyz: tuple[str, dict[str, str]]
) -> AsyncIterator[Cluster]:
    """kmock with our CRDs, and the operator running against it until the test ends."""
    register_crds(kmock)
    base, _ = readyz
    url = str(kmock.url).rstrip("/")
    ctx = OperatorContext(
        api=KubeApi(url),
        default_image="example.com/asbru:test",
        pod_url=lambda pod: f"{base}/{pod['metadata']['name']}",
    )
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=run_operator, args=(ctx, stop, ready), name="operator")
    thread.start()
    async with aiohttp.ClientSession() as session:
        test_side = Cluster(url, session)
        try:
            assert await asyncio.to_thread(ready.wait, 10), "the operator did not start"
            yield test_side
        finally:
            stop.set()
            await asyncio.to_thread(thread.join, 20)
            await test_side.api.close()
    assert not thread.is_alive(), "the operator did not stop"


async def test_gateway_renders_owned_objects_and_status(
    cluster: Cluster, readyz: tuple[str, dict[str, str]]
) -> None:
    _, served = readyz
    await cluster.create(SECRETS, fixtures.secret(**{"api-key": "sk-one"}))
    await cluster.create(PROVIDERS, fixtures.provider())
    await cluster.create(ApiResource("asbru.dev", "v1alpha1", "llmroutes"), fixtures.route())
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
    served["gw-abc"] = revision

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
        lambda: _condition_with(cluster, PROVIDERS, "openai", "ResolvedRefs", "False")
    )
    assert "late-keys" in provider_cond["message"]
    assert await cluster.get(CONFIGMAPS, "gw-config") is None

    await cluster.create(SECRETS, fixtures.secret("late-keys", **{"api-key": "sk-late"}))
    await eventually(lambda: _condition_with(cluster, GATEWAYS, "gw", "ResolvedRefs", "True"))
    assert await cluster.get(CONFIGMAPS, "gw-config") is not None
    await eventually(lambda: _condition_with(cluster, PROVIDERS, "openai", "ResolvedRefs", "True"))


async def _condition_with(
    cluster: Cluster, resource: ApiResource, name: str, kind: str, value: str
) -> dict[str, Any] | None:
    cond = condition(await cluster.get(resource, name), kind)
    return cond if cond.get("status") == value else None
