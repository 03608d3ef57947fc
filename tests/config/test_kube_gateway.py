"""The gateway served from Kubernetes: ConfigMap changes go live in under a second, under load.

The real gateway (uvicorn in a thread) runs with ``--kube-source``-equivalent settings and a
kubeconfig pointing at kmock, so the whole production path is exercised: kubeconfig -> API client
-> list/watch -> validation -> hot apply -> requests served by the new revision.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from asbru_gateway.app import AppSettings
from asbru_gateway.config.kube_source import KubeConfigSource
from asbru_gateway.config.model import SCHEMA_MINOR
from tests.gateway_server import RunningGateway, run_gateway, served_model
from tests.kube_cluster import NAME, NAMESPACE, Cluster
from tests.waiting import eventually


def _config(generation: int) -> str:
    return json.dumps(
        {
            "schemaVersion": "asbru.dev/v1alpha1",
            "providers": [
                {"name": "echo", "type": "echo", "options": {"chunk_delay_ms": 2}},
                {
                    "name": "openai",
                    "type": "openai",
                    "base_url": "http://127.0.0.1:9/v1",
                    "keys": [{"name": "main", "secret": "secret:openai-key"}],
                },
            ],
            "routes": [{"name": "chat", "targets": [{"provider": "echo", "model": f"gen-{generation}"}]}],
        }
    )


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


async def _rejected(source: KubeConfigSource, needle: str) -> bool:
    return bool(source.last_error and needle in source.last_error)


@pytest.fixture
async def served(
    cluster: Cluster, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[RunningGateway, httpx.AsyncClient]]:
    """A gateway reading its config from kmock (generation 0 applied), and a client for it."""
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    await cluster.create_secret({"openai-key": "sk-kube-0123456789"})
    await cluster.create_configmap(_config(0))
    with contextlib.ExitStack() as stack:
        try:
            # Started from a worker thread: this loop must keep serving the emulator meanwhile.
            gateway = await asyncio.to_thread(
                stack.enter_context, run_gateway(settings=AppSettings(kube_source=f"{NAMESPACE}/{NAME}"))
            )
            async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
                await eventually(lambda: _ready(client), timeout_s=20)
                assert await served_model(client) == "gen-0"
                yield gateway, client
        finally:
            await asyncio.to_thread(stack.close)


async def test_configmap_change_reaches_serving_within_a_second_under_load(
    cluster: Cluster, served: tuple[RunningGateway, httpx.AsyncClient]
) -> None:
    _, client = served
    failures: list[BaseException] = []
    stop = asyncio.Event()

    async def load() -> None:
        while not stop.is_set():
            try:
                await served_model(client)
            except Exception as error:
                failures.append(error)

    workers = [asyncio.create_task(load()) for _ in range(4)]
    timings: list[float] = []
    for generation in range(1, 6):
        changed_at = time.perf_counter()
        await cluster.update_configmap(_config(generation))
        async with asyncio.timeout(5):
            while await served_model(client) != f"gen-{generation}":
                pass
        timings.append(time.perf_counter() - changed_at)
    stop.set()
    await asyncio.gather(*workers)
    assert failures == []
    print(f"ConfigMap change -> served: {[round(t * 1000, 1) for t in timings]} ms")
    assert max(timings) < 1.0


async def test_invalid_configmap_keeps_the_last_good_config(
    cluster: Cluster, served: tuple[RunningGateway, httpx.AsyncClient]
) -> None:
    gateway, client = served
    revision = (await client.get("/readyz")).json()["revision"]
    broken: dict[str, Any] = json.loads(_config(1))
    broken["providers"][0]["pool"] = {"concurrency": -1}
    await cluster.update_configmap(json.dumps(broken))
    await cluster.update_configmap(_config(2).replace("secret:openai-key", "secret:missing-key"))
    # The source reports each rejection; serving stays on the last good revision.
    source = gateway.app.kube_source
    assert source is not None
    await eventually(lambda: _rejected(source, "missing-key"), timeout_s=5)
    assert (await client.get("/readyz")).json()["revision"] == revision
    assert await served_model(client) == "gen-0"


async def test_a_config_of_a_newer_minor_keeps_this_gateway_serving_and_updating(
    cluster: Cluster, served: tuple[RunningGateway, httpx.AsyncClient]
) -> None:
    """Rolling upgrade: the operator already writes a newer schema minor with additive fields; this
    (older) gateway applies the change, ignoring only the fields it does not know."""
    _, client = served
    newer: dict[str, Any] = json.loads(_config(1))
    newer["schemaMinor"] = SCHEMA_MINOR + 1
    newer["tracing"] = {"exporter": "otlp"}
    newer["providers"][0]["circuitBreaker"] = {"failures": 5}
    await cluster.update_configmap(json.dumps(newer))

    async def serves_gen_1() -> bool:
        return await served_model(client) == "gen-1"

    await eventually(serves_gen_1, timeout_s=5)
    assert (await client.get("/readyz")).status_code == 200


async def test_readiness_reports_the_schema_and_the_last_refused_revision_and_why(
    cluster: Cluster, served: tuple[RunningGateway, httpx.AsyncClient]
) -> None:
    """The operator reads this to say which pods refuse which revision (``Programmed``)."""
    _, client = served
    serving = (await client.get("/readyz")).json()
    assert serving["schema"] == {"version": "asbru.dev/v1alpha1", "minor": SCHEMA_MINOR}
    assert "rejected" not in serving
    broken: dict[str, Any] = json.loads(_config(1))
    broken["providers"][0]["pool"] = {"concurrency": -1}
    await cluster.update_configmap(json.dumps(broken), revision="rev-broken")

    async def refused() -> bool:
        return "rejected" in (await client.get("/readyz")).json()

    await eventually(refused, timeout_s=5)
    answer = await client.get("/readyz")
    assert answer.status_code == 200  # still ready: the last good revision keeps serving
    ready = answer.json()
    assert ready["revision"] == serving["revision"]
    assert ready["rejected"]["revision"] == "rev-broken"
    assert "providers.0.pool.concurrency" in ready["rejected"]["reason"]

    await cluster.update_configmap(_config(2), revision="rev-good")
    await eventually(lambda: _serves(client, "gen-2"), timeout_s=5)
    assert "rejected" not in (await client.get("/readyz")).json()


async def _serves(client: httpx.AsyncClient, model: str) -> bool:
    return await served_model(client) == model
