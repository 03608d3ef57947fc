"""The operator's footprint on objects and its own lifecycle: no finalizers, prompt shutdown."""

from __future__ import annotations

from typing import Any

from asbru_operator.crd_models.common import GROUP
from asbru_operator.kubeapi import GATEWAYS, PROVIDERS
from tests.operator import fixtures
from tests.operator.fixtures import NS
from tests.operator.kmock_cluster import (
    DEPLOYMENTS,
    PODS,
    SECRETS,
    Cluster,
    FakePods,
    condition_with,
    eventually,
)

SHUTDOWN_BOUND_S = 3.0
"""Below the 5 s cancellation timeout the old per-gateway probe daemon made every shutdown wait, with
room for kopf's own 2 s grace for a worker still busy with an object (``queueing.exit_timeout``)."""


async def _reconciled(cluster: Cluster, name: str = "gw") -> dict[str, Any]:
    await cluster.create(SECRETS, fixtures.secret(**{"api-key": "sk-one"}))
    await cluster.create(PROVIDERS, fixtures.provider())
    await cluster.create(GATEWAYS, fixtures.gateway(name))
    await eventually(lambda: condition_with(cluster, GATEWAYS, name, "ResolvedRefs", "True"))
    body = await cluster.get(GATEWAYS, name)
    assert body is not None
    return body


async def test_a_gateway_carries_no_finalizer_and_is_deleted_without_an_operator(cluster: Cluster) -> None:
    body = await _reconciled(cluster)
    assert not body["metadata"].get("finalizers")

    await cluster.stop_operator()
    await cluster.delete(GATEWAYS, "gw")
    assert await cluster.get(GATEWAYS, "gw") is None  # gone at once: nothing waits for an operator


async def test_a_finalizer_left_by_an_older_operator_is_removed(cluster: Cluster) -> None:
    """Gateways created by an operator that still used a probe daemon carry its finalizer."""
    await cluster.create(SECRETS, fixtures.secret(**{"api-key": "sk-one"}))
    await cluster.create(PROVIDERS, fixtures.provider())
    old = fixtures.gateway()
    old["metadata"]["finalizers"] = [f"{GROUP}/finalizer"]
    await cluster.create(GATEWAYS, old)

    async def released() -> bool:
        body = await cluster.get(GATEWAYS, "gw")
        return body is not None and not body["metadata"].get("finalizers")

    await eventually(released)


async def test_shutdown_does_not_wait_for_a_probe_in_flight(cluster: Cluster, fake_pods: FakePods) -> None:
    await _reconciled(cluster)
    deployment = await eventually(lambda: cluster.get(DEPLOYMENTS, "gw"))
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    fake_pods.hanging.add("gw-hung")
    pod = {"metadata": {"name": "gw-hung", "namespace": NS, "labels": labels}, "status": {"phase": "Running"}}
    await cluster.create(PODS, pod)
    await eventually(fake_pods.probe_hangs.wait, within_s=10)  # a probe is now waiting on that pod

    took = await cluster.stop_operator()  # ~0.5 s here; 6 s with the old probe daemon
    assert took < SHUTDOWN_BOUND_S, f"the operator took {took:.1f} s to stop"


async def test_a_broken_gateway_does_not_stop_the_others_being_probed(
    cluster: Cluster, fake_pods: FakePods
) -> None:
    await _reconciled(cluster, "bad")
    await cluster.patch(GATEWAYS, "bad", {"spec": {"replicas": -1}})  # what no schema let through
    await eventually(lambda: condition_with(cluster, GATEWAYS, "bad", "Accepted", "False"))
    await cluster.create(GATEWAYS, fixtures.gateway("good", replicas=1))
    await eventually(lambda: condition_with(cluster, GATEWAYS, "good", "ResolvedRefs", "True"))
    body = await cluster.get(GATEWAYS, "good")
    deployment = await eventually(lambda: cluster.get(DEPLOYMENTS, "good"))
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    pod = {"metadata": {"name": "good-1", "namespace": NS, "labels": labels}, "status": {"phase": "Running"}}
    await cluster.create(PODS, pod)
    fake_pods.served["good-1"] = str((body or {})["status"]["revision"])
    await eventually(lambda: condition_with(cluster, GATEWAYS, "good", "Programmed", "True"))
