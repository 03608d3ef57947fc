"""The operator with kmock and real gateway "pods": shared by the end-to-end operator tests."""

from __future__ import annotations

import asyncio
import contextlib
import threading
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
from tests.operator.test_operator_kmock import Cluster, register_crds, run_operator


@pytest.fixture
async def control_plane(
    kmock: kmock.KubernetesEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Cluster, dict[str, RunningGateway]]]:
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
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=run_operator, args=(ctx, stop, ready, 0.3), name="operator")
    thread.start()
    with contextlib.ExitStack() as stack:
        async with aiohttp.ClientSession() as session:
            cluster = Cluster(url, session)
            try:
                assert await asyncio.to_thread(ready.wait, 10), "the operator did not start"
                yield cluster, pods
            finally:
                stop.set()
                await asyncio.to_thread(thread.join, 20)
                await cluster.api.close()
                # Gateways stop from a worker thread: this loop keeps serving kmock meanwhile.
                await asyncio.to_thread(stack.close)
    assert not thread.is_alive()
