"""``LLMPlugin``: a typed plugin instance, its order, settings and the gateways it attaches to."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from asbru_operator.crd_models.common import BasicStatus, CRDModel, LabelSelector, OpenObject


class PluginType(StrEnum):
    """Plugin types the data plane ships; settings are validated by the plugin itself."""

    TELEMETRY = "telemetry"


class LLMPluginSpec(CRDModel):
    """Desired state of an LLMPlugin."""

    type: PluginType
    order: int = Field(0, ge=-1000, le=1000, description="Pre-hooks run in ascending order.")
    enabled: bool = True
    settings: OpenObject | None = Field(None, description="Plugin-specific settings (deliberately open).")
    gateway_selector: LabelSelector | None = Field(None, description="Default: every LLMGateway here.")


class LLMPluginStatus(BasicStatus):
    """Observed state of an LLMPlugin."""
