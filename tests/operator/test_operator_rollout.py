"""Rollout safety: the operator hears which pods refuse which revision, and writes the config
schema its oldest pods read (fake pods on kmock; see ``kmock_cluster``)."""

from __future__ import annotations

from typing import Any

import orjson

from asbru_gateway.config.model import SCHEMA_MINOR, SCHEMA_VERSION
from asbru_operator.kubeapi import GATEWAYS, PROVIDERS
from tests.operator import fixtures
from tests.operator.fixtures import NS
from tests.operator.kmock_cluster import (
    CONFIGMAPS,
    DEPLOYMENTS,
    PODS,
    SECRETS,
    Cluster,
    FakePods,
    condition,
    condition_with,
    eventually,
)


async def _gateway_with_pods(cluster: Cluster, *pods: str) -> str:
    """A rendered gateway and running pods (not yet answering); returns the rendered revision."""
    await cluster.create(SECRETS, fixtures.secret(**{"api-key": "sk-one"}))
    await cluster.create(PROVIDERS, fixtures.provider())
    await cluster.create(GATEWAYS, fixtures.gateway(replicas=len(pods)))
    deployment = await eventually(lambda: cluster.get(DEPLOYMENTS, "gw"))
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for name in pods:
        pod = {"metadata": {"name": name, "namespace": NS, "labels": labels}, "status": {"phase": "Running"}}
        await cluster.create(PODS, pod)
    return await _rendered_revision(cluster)


async def _rendered_revision(cluster: Cluster) -> str:
    config_map = await eventually(lambda: cluster.get(CONFIGMAPS, "gw-config"))
    return str(config_map["metadata"]["annotations"]["asbru.dev/revision"])


async def _written(cluster: Cluster) -> dict[str, Any]:
    """The config the operator last wrote to the gateway's ConfigMap."""
    config_map = await eventually(lambda: cluster.get(CONFIGMAPS, "gw-config"))
    config: dict[str, Any] = orjson.loads(config_map["data"]["config.json"])
    return config


async def test_programmed_says_which_pods_refuse_which_revision_and_why(
    cluster: Cluster, fake_pods: FakePods
) -> None:
    revision = await _gateway_with_pods(cluster, "gw-a", "gw-b")
    schema = {"version": SCHEMA_VERSION, "minor": SCHEMA_MINOR}
    fake_pods.served["gw-a"] = revision
    reason = "providers[openai]: failed to start: no route to host"
    fake_pods.answers["gw-b"] = (
        200,
        {
            "status": "ready",
            "revision": "older",
            "schema": schema,
            "rejected": {"revision": revision, "reason": reason},
        },
    )

    async def refused() -> dict[str, Any] | None:
        programmed = condition(await cluster.get(GATEWAYS, "gw"), "Programmed")
        return programmed if programmed.get("reason") == "Rejected" else None

    programmed = await eventually(refused)
    assert programmed["status"] == "False"
    assert programmed["message"] == f"1 of 2 pods run revision {revision}; gw-b refuses it: {reason}"
    ready = condition(await cluster.get(GATEWAYS, "gw"), "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Rejected")

    fake_pods.answers.pop("gw-b")
    fake_pods.served["gw-b"] = revision
    await eventually(lambda: condition_with(cluster, GATEWAYS, "gw", "Programmed", "True"))


async def test_the_config_is_written_for_the_oldest_schema_the_pods_read(
    cluster: Cluster, fake_pods: FakePods
) -> None:
    """Rolling upgrade: while a pod of an older gateway (minor 0, which predates the schema report)
    runs, the operator writes minor 0; once every pod reads this minor, it writes this one."""
    first = await _gateway_with_pods(cluster, "gw-old", "gw-new")
    assert (await _written(cluster))["schemaMinor"] == SCHEMA_MINOR
    fake_pods.answers["gw-old"] = (503, {"status": "starting", "revision": None})  # an older gateway's answer
    fake_pods.served["gw-new"] = first

    async def rendered_for_minor_0() -> dict[str, Any] | None:
        config = await _written(cluster)
        return config if "schemaMinor" not in config else None

    old_config = await eventually(rendered_for_minor_0)
    assert "allow_private_network" not in old_config["providers"][0]
    assert ((await cluster.get(GATEWAYS, "gw")) or {})["status"]["schemaMinor"] == 0
    second = await _rendered_revision(cluster)
    assert second != first

    fake_pods.answers.pop("gw-old")  # the old pod is replaced by one of this version
    fake_pods.served.update({"gw-old": second, "gw-new": second})

    async def rendered_for_this_minor() -> bool:
        return (await _written(cluster)).get("schemaMinor") == SCHEMA_MINOR

    await eventually(rendered_for_this_minor)
