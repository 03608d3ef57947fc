"""GatewayConfig + LLMGateway -> Kubernetes objects: the fields that matter, and determinism."""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson

from asbru_operator.crd_models.gateway import LLMGatewaySpec
from asbru_operator.render.config import RenderedConfig, Sources, render_config
from asbru_operator.render.names import GatewayRef
from asbru_operator.render.objects import (
    DEPENDS_ON,
    build_config_map,
    build_config_pair,
    build_deployment,
    build_infrastructure,
    build_role,
    build_secret,
    build_service,
)
from tests.operator import fixtures

IMAGE = "example.com/asbru:1"


def rendered(
    secret_value: str = "sk-one", **gateway_spec: Any
) -> tuple[GatewayRef, LLMGatewaySpec, RenderedConfig]:
    gateway = fixtures.gateway(**gateway_spec)
    result = render_config(
        Sources(
            gateway=gateway,
            providers=[fixtures.provider()],
            secrets={"openai-keys": {"api-key": secret_value}},
        )
    )
    return GatewayRef.of(gateway), LLMGatewaySpec.model_validate(gateway["spec"]), result


def all_objects(secret_value: str = "sk-one", **gateway_spec: Any) -> list[dict[str, Any]]:
    ref, spec, result = rendered(secret_value, **gateway_spec)
    waves = build_infrastructure(ref, spec, default_image=IMAGE)
    return build_config_pair(ref, result) + [obj for wave in waves for obj in wave]


def test_config_map_holds_references_and_revision() -> None:
    ref, _, result = rendered()
    cm = build_config_map(ref, result)
    assert cm["metadata"]["name"] == "gw-config"
    assert cm["metadata"]["annotations"]["asbru.dev/revision"] == result.served_revision
    config = orjson.loads(cm["data"]["config.json"])
    assert config["providers"][0]["keys"][0]["secret"] == "secret:openai.primary"
    assert "sk-one" not in json.dumps(cm)


def test_secret_has_same_name_and_encoded_values() -> None:
    ref, _, result = rendered()
    secret = build_secret(ref, result)
    assert secret["metadata"]["name"] == build_config_map(ref, result)["metadata"]["name"]
    assert base64.b64decode(secret["data"]["openai.primary"]) == b"sk-one"


def test_every_object_is_owned_and_labelled() -> None:
    for obj in all_objects():
        owner = obj["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
            "LLMGateway",
            "gw",
            "uid-gw",
            True,
        )
        assert obj["metadata"]["labels"]["asbru.dev/gateway"] == "gw"
        assert obj["metadata"]["namespace"] == "default"


def test_deployment_selector_matches_pod_labels_and_service() -> None:
    ref, spec, _ = rendered(pod={"labels": {"team": "a", "asbru.dev/gateway": "spoofed"}})
    deployment = build_deployment(ref, spec, default_image=IMAGE)
    selector = deployment["spec"]["selector"]["matchLabels"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    assert pod_labels["team"] == "a" and pod_labels["asbru.dev/gateway"] == "gw"
    assert build_service(ref, spec)["spec"]["selector"] == selector


def test_container_command_probes_and_security() -> None:
    ref, spec, _ = rendered(drainTimeoutSeconds=40)
    pod = build_deployment(ref, spec, default_image=IMAGE)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == [
        "serve",
        "--kube-source",
        "$(POD_NAMESPACE)/gw-config",
        "--host",
        "0.0.0.0",
        "--port",
        "8080",
        "--shutdown-drain",
        "40",
    ]
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's USER
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "preStop" in container["lifecycle"]
    assert pod["terminationGracePeriodSeconds"] > 40
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["image"] == IMAGE


def test_pod_overrides_apply() -> None:
    ref, spec, _ = rendered(
        image="mine:2",
        pod={
            "nodeSelector": {"pool": "llm"},
            "tolerations": [{"key": "gpu", "operator": "Exists"}],
            "annotations": {"a": "b"},
        },
        resources={"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": 2}},
    )
    template = build_deployment(ref, spec, default_image=IMAGE)["spec"]["template"]
    assert template["spec"]["nodeSelector"] == {"pool": "llm"}
    assert template["spec"]["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    assert template["metadata"]["annotations"] == {"a": "b"}
    assert template["spec"]["containers"][0]["image"] == "mine:2"
    assert template["spec"]["containers"][0]["resources"]["limits"] == {"cpu": 2}


def test_role_reads_only_its_own_config_pair() -> None:
    ref, _, _ = rendered()
    rules = build_role(ref)["rules"]
    assert {r["resources"][0] for r in rules} == {"configmaps", "secrets"}
    for rule in rules:
        assert rule["resourceNames"] == ["gw-config"]
        assert sorted(rule["verbs"]) == ["get", "list", "watch"]


def test_same_input_same_bytes() -> None:
    first = orjson.dumps(all_objects(), option=orjson.OPT_SORT_KEYS)
    second = orjson.dumps(all_objects(), option=orjson.OPT_SORT_KEYS)
    assert first == second


def test_key_rotation_changes_revision_but_not_pod_template() -> None:
    ref, spec, before = rendered("sk-one")
    _, _, after = rendered("sk-two")
    assert before.served_revision != after.served_revision
    assert build_config_map(ref, before)["data"] == build_config_map(ref, after)["data"]
    assert build_secret(ref, before)["data"] != build_secret(ref, after)["data"]
    template = build_deployment(ref, spec, default_image=IMAGE)["spec"]["template"]
    assert "revision" not in json.dumps(template)


def test_private_registry_pull_secrets_reach_the_pod() -> None:
    ref, spec, _ = rendered(pod={"imagePullSecrets": ["regcred"]})
    pod = build_deployment(ref, spec, default_image=IMAGE)["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]


def test_infrastructure_is_written_after_what_it_depends_on() -> None:
    """A real API server refuses a RoleBinding before its Role; pods need their ServiceAccount and
    RoleBinding: each wave holds only objects whose dependencies earlier waves wrote."""
    ref, spec, _ = rendered()
    waves = build_infrastructure(ref, spec, default_image=IMAGE)
    wave_of = {obj["kind"]: index for index, wave in enumerate(waves) for obj in wave}
    assert set(wave_of) == {
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
    }
    for kind, needs in DEPENDS_ON.items():
        assert all(wave_of[need] < wave_of[kind] for need in needs), kind
    assert wave_of["Role"] < wave_of["RoleBinding"] < wave_of["Deployment"]
    assert wave_of["ServiceAccount"] == wave_of["Service"] == 0  # independent objects go at once
