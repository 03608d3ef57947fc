"""Fixtures of the operator's end-to-end tests: fake gateway pods and the operator against kmock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import kmock
import pytest

from asbru_operator.context import OperatorContext
from asbru_operator.kubeapi import KubeApi
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
