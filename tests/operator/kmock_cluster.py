"""The operator end to end, in-process, against kmock's Kubernetes API emulator: the shared harness.

kopf runs in its own thread and event loop against kmock's URL; tests create custom resources and
Secrets through the API (so watch events flow) and wait on observable state with timeouts, never
fixed sleeps. Gateway pods are Pod objects created by the test; their ``/readyz`` is a local aiohttp
app (``FakePods``), reached through the operator's injectable pod-address function.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.web
import kmock
import kopf
import orjson
import yaml

from asbru_gateway.config.model import SCHEMA_MINOR, SCHEMA_VERSION
from asbru_operator.context import MEMO_KEY, OperatorContext
from asbru_operator.handlers import build_registry
from asbru_operator.kubeapi import ApiResource, KubeApi
from tests.operator.fixtures import NS

CRDS = Path(__file__).parents[2] / "crds"
CONFIGMAPS = ApiResource("", "v1", "configmaps")
SECRETS = ApiResource("", "v1", "secrets")
DEPLOYMENTS = ApiResource("apps", "v1", "deployments")
PODS = ApiResource("", "v1", "pods")
ROLES = ApiResource("rbac.authorization.k8s.io", "v1", "roles")
ROLE_BINDINGS = ApiResource("rbac.authorization.k8s.io", "v1", "rolebindings")
ROUTES = ApiResource("asbru.dev", "v1alpha1", "llmroutes")
PLUGINS = ApiResource("asbru.dev", "v1alpha1", "llmplugins")


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
        self.operator: OperatorThread | None = None

    async def create(self, resource: ApiResource, body: Mapping[str, Any]) -> None:
        async with self.session.post(self.url + resource.path(NS), data=orjson.dumps(body)) as response:
            assert response.status < 300, await response.text()

    async def patch(self, resource: ApiResource, name: str, patch: Mapping[str, Any]) -> None:
        headers = {"Content-Type": "application/merge-patch+json"}
        url = self.url + resource.path(NS, name)
        async with self.session.patch(url, data=orjson.dumps(patch), headers=headers) as response:
            assert response.status < 300, await response.text()

    async def delete(self, resource: ApiResource, name: str) -> None:
        async with self.session.delete(self.url + resource.path(NS, name)) as response:
            assert response.status < 300, await response.text()

    async def get(self, resource: ApiResource, name: str) -> dict[str, Any] | None:
        return await self.api.get(resource, NS, name)

    async def stop_operator(self) -> float:
        """Stop the operator now; seconds from the stop request until its thread ended."""
        assert self.operator is not None
        return await self.operator.stop()


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


async def condition_with(
    cluster: Cluster, resource: ApiResource, name: str, kind: str, value: str
) -> dict[str, Any] | None:
    cond = condition(await cluster.get(resource, name), kind)
    return cond if cond.get("status") == value else None


@dataclass
class FakePods:
    """Each fake pod's ``/readyz``: ready on ``served[pod]``, a custom ``answers[pod]``, or hanging."""

    url: str = ""
    served: dict[str, str] = field(default_factory=dict)
    answers: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    """Pod -> (HTTP status, JSON body): what a real gateway would say (wins over ``served``)."""
    hanging: set[str] = field(default_factory=set)
    probe_hangs: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once a probe reached a hanging pod (and is now waiting for an answer)."""
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        pod = request.match_info["pod"]
        if pod in self.hanging:
            self.probe_hangs.set()
            await self.release.wait()
        if pod in self.answers:
            status, body = self.answers[pod]
            return aiohttp.web.json_response(body, status=status)
        revision = self.served.get(pod)
        schema = {"version": SCHEMA_VERSION, "minor": SCHEMA_MINOR}  # as a gateway of this version
        if revision is None:
            return aiohttp.web.json_response({"status": "starting", "schema": schema}, status=503)
        return aiohttp.web.json_response({"status": "ready", "revision": revision, "schema": schema})


async def serve_fake_pods() -> AsyncIterator[FakePods]:
    pods = FakePods()
    app = aiohttp.web.Application()
    app.router.add_get("/{pod}/readyz", pods.handle)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    pods.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield pods
    finally:
        pods.release.set()
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


class OperatorThread:
    """Start and stop ``run_operator`` from async tests without blocking their event loop."""

    def __init__(self, ctx: OperatorContext, *, usage_interval_s: float = 10.0) -> None:
        self._stop, self._ready = threading.Event(), threading.Event()
        self._thread = threading.Thread(
            target=run_operator, args=(ctx, self._stop, self._ready, usage_interval_s), name="operator"
        )
        self._stopped_in: float | None = None

    async def start(self) -> None:
        self._thread.start()
        assert await asyncio.to_thread(self._ready.wait, 10), "the operator did not start"

    async def stop(self) -> float:
        if self._stopped_in is None and self._thread.ident is not None:
            asked = time.monotonic()
            self._stop.set()
            await asyncio.to_thread(self._thread.join, 20)
            assert not self._thread.is_alive(), "the operator did not stop"
            self._stopped_in = time.monotonic() - asked
        return self._stopped_in or 0.0


class RolesFirst:
    """kmock reactions that refuse a RoleBinding whose Role is not written yet, as a real API server
    does (its RBAC escalation check resolves the Role: "roles ... not found").

    The first write of each Role is held until some RoleBinding write arrives (at most ``hold_s``),
    like a slow API server: a client that writes both at once then always loses the race, and one
    that waits for the Role pays ``hold_s`` once.
    """

    def __init__(self, server: kmock.KubernetesEmulator, hold_s: float = 1.0) -> None:
        self.written: set[str] = set()
        self.refused: list[str] = []
        self._hold_s = hold_s
        self._binding_arrived = asyncio.Event()
        server[kmock.resource(ROLES.group, ROLES.version, ROLES.plural)] << self._on_role
        (
            server[kmock.resource(ROLE_BINDINGS.group, ROLE_BINDINGS.version, ROLE_BINDINGS.plural)]
            << self._on_role_binding
        )

    async def _on_role(self, request: kmock.Request) -> None:
        if request.action not in {kmock.action.CREATE, kmock.action.UPDATE}:
            return
        name = str(request.data["metadata"]["name"])
        if request.action == kmock.action.CREATE and name not in self.written:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._hold_s):
                    await self._binding_arrived.wait()
        self.written.add(name)

    async def _on_role_binding(self, request: kmock.Request) -> None:
        if request.action not in {kmock.action.CREATE, kmock.action.UPDATE}:
            return
        self._binding_arrived.set()
        role = str(request.data["roleRef"]["name"])
        if role not in self.written:
            self.refused.append(role)
            raise kmock.KubernetesNotFoundError(message=f'roles.rbac.authorization.k8s.io "{role}" not found')
