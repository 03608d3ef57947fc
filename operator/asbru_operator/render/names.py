"""Names, labels and annotations of the objects the operator owns: one place, so they never disagree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asbru_operator.crd_models.common import API_VERSION, GROUP

REVISION_ANNOTATION = f"{GROUP}/revision"
"""On the ConfigMap and Secret: the served revision their contents add up to."""
CONFIG_REVISION_ANNOTATION = f"{GROUP}/config-revision"
"""On the ConfigMap: ``GatewayConfig.revision`` alone (without the credentials' digest)."""
GATEWAY_LABEL = f"{GROUP}/gateway"
CONFIG_KEY = "config.json"
HTTP_PORT = 8080
FIELD_MANAGER = "asbru-operator"


@dataclass(frozen=True)
class GatewayRef:
    """Identity of one LLMGateway: what names, labels and owner references derive from."""

    name: str
    namespace: str
    uid: str

    @classmethod
    def of(cls, body: Any) -> GatewayRef:
        meta = body["metadata"]
        return cls(name=str(meta["name"]), namespace=str(meta["namespace"]), uid=str(meta.get("uid", "")))

    @property
    def config_name(self) -> str:
        """ConfigMap *and* Secret name: the gateway's kube source reads both under one name."""
        return f"{self.name}-config"

    @property
    def selector_labels(self) -> dict[str, str]:
        """Immutable Deployment selector; also how the operator finds the gateway's pods."""
        return {"app.kubernetes.io/name": "asbru-gateway", GATEWAY_LABEL: self.name}

    @property
    def labels(self) -> dict[str, str]:
        return {
            **self.selector_labels,
            "app.kubernetes.io/instance": self.name,
            "app.kubernetes.io/component": "gateway",
            "app.kubernetes.io/part-of": "asbru",
            "app.kubernetes.io/managed-by": FIELD_MANAGER,
        }

    def metadata(self, name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
        """Metadata of an owned object: labels and a controller owner reference (for garbage collection)."""
        meta: dict[str, Any] = {
            "name": name,
            "namespace": self.namespace,
            "labels": dict(self.labels),
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "LLMGateway",
                    "name": self.name,
                    "uid": self.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        }
        if annotations:
            meta["annotations"] = dict(sorted(annotations.items()))
        return meta
