"""``LLMGateway``: one gateway Deployment, the providers/routes/plugins it serves and its defaults."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from asbru_operator.crd_models.common import (
    AnnotationMap,
    BasicStatus,
    CRDModel,
    LabelKey,
    LabelMap,
    LabelSelector,
    OpenObject,
)
from asbru_operator.crd_models.governance import GovernanceSpec
from asbru_operator.crd_models.mcp_server import GatewayMcpSpec
from asbru_operator.crd_models.provider import NetworkSpec, PoolSpec

Quantity = Annotated[
    int | Annotated[str, Field(max_length=64, pattern=r"^[+]?[0-9.]+([eE][-+]?[0-9]+|[a-zA-Z]{0,2})$")],
    Field(description="A Kubernetes quantity: 500m, 1, 256Mi."),
]
ResourceName = Annotated[str, Field(pattern=r"^[a-z0-9A-Z./_-]+$", max_length=253)]
ResourceMap = Annotated[dict[ResourceName, Quantity], Field(max_length=16)]


class Resources(CRDModel):
    """Container resource requests and limits (cpu, memory, ...)."""

    requests: ResourceMap | None = None
    limits: ResourceMap | None = None


class TolerationOperator(StrEnum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Toleration(CRDModel):
    """A pod toleration, as in a Pod spec."""

    key: LabelKey | None = None
    operator: TolerationOperator | None = None
    value: Annotated[str, Field(max_length=63)] | None = None
    effect: TaintEffect | None = None
    toleration_seconds: int | None = Field(None, ge=0)


class PodOverrides(CRDModel):
    """What the gateway's pods may be customised with; everything else is the operator's."""

    node_selector: LabelMap | None = None
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32)
    affinity: OpenObject | None = Field(None, description="A Pod affinity, passed through as-is.")
    annotations: AnnotationMap | None = None
    labels: LabelMap | None = None
    priority_class_name: Annotated[str, Field(max_length=253)] | None = None
    image_pull_secrets: list[Annotated[str, Field(max_length=253)]] = Field(
        default_factory=list, max_length=16, description="Names of Secrets to pull a private image with."
    )


class ServiceType(StrEnum):
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"


class ServiceSpec(CRDModel):
    """The client-facing Service in front of the gateway's pods."""

    type: ServiceType = ServiceType.CLUSTER_IP
    port: int = Field(8080, ge=1, le=65535)
    annotations: AnnotationMap | None = None


class GatewayDefaults(CRDModel):
    """Defaults for the providers this gateway serves; a provider's own fields win."""

    network: NetworkSpec | None = None
    pool: PoolSpec | None = None


class LLMGatewaySpec(CRDModel):
    """Desired state of an LLMGateway."""

    replicas: int = Field(2, ge=0, le=1000)
    image: Annotated[str, Field(min_length=1, max_length=1024)] | None = Field(
        None, description="Gateway image (default: the operator's --gateway-image)."
    )
    image_pull_policy: (
        Annotated[str, Field(pattern=r"^(Always|IfNotPresent|Never)$", max_length=16)] | None
    ) = None
    resources: Resources | None = None
    pod: PodOverrides | None = None
    service: ServiceSpec | None = None
    provider_selector: LabelSelector | None = Field(None, description="Default: every LLMProvider here.")
    route_selector: LabelSelector | None = Field(None, description="Default: every LLMRoute here.")
    plugin_selector: LabelSelector | None = Field(None, description="Default: every LLMPlugin here.")
    defaults: GatewayDefaults | None = None
    drain_timeout_seconds: int = Field(30, ge=0, le=3600, description="Grace for in-flight requests.")
    max_body_bytes: int | None = Field(None, ge=1024, le=1024 * 1024 * 1024)
    mcp_selector: LabelSelector | None = Field(None, description="Default: every LLMMCPServer here.")
    mcp: GatewayMcpSpec | None = Field(None, description="Agent-mode limits and the gateway's /mcp endpoint.")
    governance: GovernanceSpec | None = Field(None, description="Virtual keys, limits, budgets, prices.")


class LLMGatewayStatus(BasicStatus):
    """Observed state: conditions, the served revision, pods running it (N of M) and the scale view."""

    revision: Annotated[str, Field(max_length=64)] | None = Field(None, description="Served revision.")
    programmed: Annotated[str, Field(max_length=32)] | None = Field(None, description="N/M pods on it.")
    replicas: int | None = Field(None, ge=0, description="Pods seen (scale subresource).")
    selector: Annotated[str, Field(max_length=1024)] | None = Field(None, description="Pod label selector.")
    schema_minor: int | None = Field(
        None, ge=0, description="Oldest config schema minor the pods read; the config is rendered for it."
    )
