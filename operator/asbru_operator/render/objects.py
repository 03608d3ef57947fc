"""The Kubernetes objects of one gateway, as plain dicts ready for server-side apply.

The pod template depends only on the LLMGateway spec, never on the config or the credentials:
pods apply a new config live, so a config change must not roll the Deployment.
"""

from __future__ import annotations

import base64
from typing import Any

from asbru_operator.crd_models.gateway import LLMGatewaySpec, PodOverrides, ServiceSpec
from asbru_operator.render.config import RenderedConfig
from asbru_operator.render.governance import ADMIN_PORT, admin_env
from asbru_operator.render.names import (
    CONFIG_KEY,
    CONFIG_REVISION_ANNOTATION,
    HTTP_PORT,
    REVISION_ANNOTATION,
    GatewayRef,
)

Obj = dict[str, Any]
PRE_STOP_SLEEP_SECONDS = 5
"""Endpoints controllers and load balancers need a moment to stop sending before the drain starts."""
TERMINATION_MARGIN_SECONDS = 10
RUN_AS_USER = 10001  # the image's own user (Dockerfile), so files it owns stay readable
"""Numeric non-root user: ``runAsNonRoot`` can only be verified for a numeric UID."""


def build_config_map(ref: GatewayRef, rendered: RenderedConfig) -> Obj:
    """The config JSON (references only, no credentials) and the revision it serves."""
    annotations = {
        REVISION_ANNOTATION: rendered.served_revision,
        CONFIG_REVISION_ANNOTATION: rendered.config.revision,
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": ref.metadata(ref.config_name, annotations),
        "data": {CONFIG_KEY: rendered.config.canonical_json().decode("utf-8")},
    }


def build_secret(ref: GatewayRef, rendered: RenderedConfig) -> Obj:
    """The resolved credentials, keyed as the config's ``secret:<key>`` references expect."""
    data = {
        key: base64.b64encode(value.encode("utf-8")).decode("ascii")
        for key, value in rendered.secret_data.items()
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": ref.metadata(ref.config_name, {REVISION_ANNOTATION: rendered.served_revision}),
        "data": dict(sorted(data.items())),
    }


def build_service_account(ref: GatewayRef) -> Obj:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": ref.metadata(ref.name)}


def build_role(ref: GatewayRef) -> Obj:
    """Read access to exactly the gateway's own ConfigMap and Secret, nothing else."""
    rules = [
        {
            "apiGroups": [""],
            "resources": [resource],
            "resourceNames": [ref.config_name],
            "verbs": ["get", "list", "watch"],
        }
        for resource in ("configmaps", "secrets")
    ]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": ref.metadata(ref.name),
        "rules": rules,
    }


def build_role_binding(ref: GatewayRef) -> Obj:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": ref.metadata(ref.name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ref.name},
        "subjects": [{"kind": "ServiceAccount", "name": ref.name, "namespace": ref.namespace}],
    }


def build_service(ref: GatewayRef, spec: LLMGatewaySpec) -> Obj:
    service = spec.service or ServiceSpec.model_validate({})
    meta = ref.metadata(ref.name, dict(service.annotations or {}))
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": str(service.type),
            "selector": dict(ref.selector_labels),
            "ports": [{"name": "http", "port": service.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def build_pod_disruption_budget(ref: GatewayRef) -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": ref.metadata(ref.name),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(ref.selector_labels)}},
    }


def build_deployment(ref: GatewayRef, spec: LLMGatewaySpec, *, default_image: str) -> Obj:
    """The gateway Deployment: restricted pod security, probes, a drain-aware shutdown."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": ref.metadata(ref.name),
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": dict(ref.selector_labels)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": build_pod_template(ref, spec, default_image=default_image),
        },
    }


def build_pod_template(ref: GatewayRef, spec: LLMGatewaySpec, *, default_image: str) -> Obj:
    """Pod template from the gateway spec alone (see the module docstring for why)."""
    pod = spec.pod or PodOverrides.model_validate({})
    pod_spec: Obj = {
        "serviceAccountName": ref.name,
        "automountServiceAccountToken": True,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": spec.drain_timeout_seconds
        + PRE_STOP_SLEEP_SECONDS
        + TERMINATION_MARGIN_SECONDS,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(ref, spec, default_image)],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
    }
    if pod.node_selector:
        pod_spec["nodeSelector"] = dict(sorted(pod.node_selector.items()))
    if pod.tolerations:
        pod_spec["tolerations"] = [
            t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in pod.tolerations
        ]
    if pod.affinity:
        pod_spec["affinity"] = dict(pod.affinity)
    if pod.priority_class_name:
        pod_spec["priorityClassName"] = pod.priority_class_name
    if pod.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": name} for name in pod.image_pull_secrets]
    metadata: Obj = {"labels": {**dict(pod.labels or {}), **ref.labels}}
    if pod.annotations:
        metadata["annotations"] = dict(sorted(pod.annotations.items()))
    return {"metadata": metadata, "spec": pod_spec}


def _container(ref: GatewayRef, spec: LLMGatewaySpec, default_image: str) -> Obj:
    container: Obj = {
        "name": "gateway",
        "image": spec.image or default_image,
        "command": ["asbru"],
        "args": [
            "serve",
            "--kube-source",
            f"$(POD_NAMESPACE)/{ref.config_name}",
            "--host",
            "0.0.0.0",  # noqa: S104 - a pod serves its Service on its own IP
            "--port",
            str(HTTP_PORT),
            "--shutdown-drain",
            str(spec.drain_timeout_seconds),
        ],
        "env": [
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRE_STOP_SLEEP_SECONDS)]}}},
        "securityContext": {
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # An emptyDir, since the root filesystem is read-only.
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
    }
    if spec.governance is not None:  # the management API: the operator reads usage from it
        container["env"] += admin_env(ref)
        container["ports"].append({"name": "admin", "containerPort": ADMIN_PORT, "protocol": "TCP"})
    if spec.image_pull_policy:
        container["imagePullPolicy"] = spec.image_pull_policy
    if spec.resources is not None:
        container["resources"] = spec.resources.model_dump(by_alias=True, exclude_none=True, mode="json")
    return container


DEPENDS_ON: dict[str, frozenset[str]] = {
    "RoleBinding": frozenset({"Role", "ServiceAccount"}),
    "Deployment": frozenset({"ServiceAccount", "RoleBinding"}),
}
"""What the API server (or the pods) needs to exist before an object of a kind is written.

A real API server refuses a RoleBinding whose Role does not exist yet (RBAC escalation checks
resolve the Role); pods cannot be created before their ServiceAccount, and cannot read their
config before their RoleBinding grants it.
"""


def build_infrastructure(ref: GatewayRef, spec: LLMGatewaySpec, *, default_image: str) -> list[list[Obj]]:
    """Everything but the config pair, in waves: each wave needs only what earlier waves wrote.

    Objects within a wave do not depend on each other and may be applied concurrently.
    """
    return apply_waves(
        [
            build_service_account(ref),
            build_role(ref),
            build_role_binding(ref),
            build_service(ref, spec),
            build_deployment(ref, spec, default_image=default_image),
            build_pod_disruption_budget(ref),
        ]
    )


def apply_waves(objects: list[Obj]) -> list[list[Obj]]:
    """``objects`` layered by ``DEPENDS_ON``: an object goes one wave after the last it depends on."""
    kinds = {str(obj["kind"]) for obj in objects}
    wave_of: dict[str, int] = {}

    def wave(kind: str) -> int:
        if kind not in wave_of:
            needs = DEPENDS_ON.get(kind, frozenset()) & kinds
            wave_of[kind] = 1 + max((wave(need) for need in needs), default=-1)
        return wave_of[kind]

    waves: list[list[Obj]] = [[] for _ in range(1 + max((wave(str(o["kind"])) for o in objects), default=-1))]
    for obj in objects:
        waves[wave(str(obj["kind"]))].append(obj)
    return waves


def build_config_pair(ref: GatewayRef, rendered: RenderedConfig) -> list[Obj]:
    """Secret first, then ConfigMap: a pod that sees the new config already finds its new keys."""
    return [build_secret(ref, rendered), build_config_map(ref, rendered)]
