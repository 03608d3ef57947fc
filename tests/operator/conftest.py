"""Fixtures of the operator's end-to-end tests: fake gateway pods, the operator against kmock, and
the operator with real gateway "pods" (``control_plane``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import kmock
import pytest

from asbru_operator.context import OperatorContext
from asbru_operator.kubeapi import KubeApi
from tests.gateway_server import RunningGateway
from tests.kube_cluster import write_kubeconfig
from tests.operator.kmock_cluster import Cluster, FakePods, OperatorThread, register_crds, serve_fake_pods


@pytest.fixture
async def fake_pods() -> AsyncIterator[FakePods]:
    """Fake gateway pods' /readyz; the test sets what each pod answers."""
    async for pods in serve_fake_pods():
        yield pods


@pytest.fixture
async def cluster(kmock: kmock.KubernetesEmulator, fake_pods: FakePods) -> AsyncIterator[Cluster]:
    """kmock with our CRDs, and the operator running against it until the test ends."""
    register_crds(kmock)
    url = str(kmock.url).rstrip("/")
    ctx = OperatorContext(
        api=KubeApi(url),
        default_image="example.com/asbru:test",
        pod_url=lambda pod: f"{fake_pods.url}/{pod['metadata']['name']}",
    )
    operator = OperatorThread(ctx)
    async with aiohttp.ClientSession() as session:
        test_side = Cluster(url, session)
        test_side.operator = operator
        try:
            await operator.start()
            yield test_side
        finally:
            await operator.stop()
            await test_side.api.close()


@pytest.fixture
async def control_plane(
    kmock: kmock.KubernetesEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Cluster, dict[str, RunningGateway]]]:
    """kmock, the operator, and real gateways the test starts as pods (``pods``: name -> gateway),
    their management APIs read for virtual keys' usage every 0.3 s."""
    register_crds(kmock)
    url = str(kmock.url).rstrip("/")
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", kmock)))
    pods: dict[str, RunningGateway] = {}

    def admin_url(pod: dict[str, Any]) -> str | None:
        running = pods.get(pod["metadata"]["name"])
        management = running.app.management if running is not None else None
        return f"http://127.0.0.1:{management.port}" if management is not None else None

    ctx = OperatorContext(
        api=KubeApi(url),
        default_image="example.com/asbru:test",
        pod_url=lambda pod: pods[pod["metadata"]["name"]].url if pod["metadata"]["name"] in pods else "",
        admin_url=admin_url,
    )
    operator = OperatorThread(ctx, usage_interval_s=0.3)
    with contextlib.ExitStack() as stack:
        async with aiohttp.ClientSession() as session:
            cluster = Cluster(url, session)
            cluster.operator = operator
            try:
                await operator.start()
                yield cluster, pods
            finally:
                await operator.stop()
                await cluster.api.close()
                # Gateways stop from a worker thread: this loop keeps serving kmock meanwhile.
                await asyncio.to_thread(stack.close)
