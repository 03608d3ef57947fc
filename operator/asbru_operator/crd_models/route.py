"""``LLMRoute``: a model name clients call, mapped to weighted, prioritised provider+model targets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from asbru_gateway.config.model import FallbackTrigger
from asbru_operator.crd_models.common import BasicStatus, CRDModel, DNSLabel, ModelName


class RouteTarget(CRDModel):
    """One provider+model; lower priority is tried first, weight splits traffic within a priority."""

    provider: DNSLabel = Field(description="Name of an LLMProvider in this namespace.")
    model: ModelName
    weight: float = Field(1.0, gt=0, le=1_000_000)
    priority: int = Field(0, ge=0, le=100)


class LLMRouteSpec(CRDModel):
    """Desired state of an LLMRoute."""

    model: ModelName | None = Field(None, description="Model name clients call (default: metadata.name).")
    targets: list[RouteTarget] = Field(min_length=1, max_length=32)
    fallback_on: list[FallbackTrigger] | None = Field(  # the data plane's enum, by construction
        None,
        max_length=len(FallbackTrigger),
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="Failures after which the next target is tried (default: the data plane's).",
    )


class LLMRouteStatus(BasicStatus):
    """Observed state of an LLMRoute: Accepted, ResolvedRefs (its providers exist), Ready."""

    model: ModelName | None = Field(
        None, description="The model name clients call: spec.model, else metadata.name (the MODEL column)."
    )


def served_model(body: Mapping[str, Any]) -> str:
    """The model name clients call for this LLMRoute: ``spec.model``, else its own name."""
    model = (body.get("spec") or {}).get("model")
    return str(model) if isinstance(model, str) and model else str(body["metadata"]["name"])
