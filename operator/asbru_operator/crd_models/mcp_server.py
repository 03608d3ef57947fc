"""``LLMMCPServer``: one MCP server the selected gateways connect to, mirroring ``McpServerConfig``.

Secrets (an ``Authorization`` header, a token in a stdio server's environment) are ``secretKeyRef``s;
the operator resolves them into the gateway's own Secret, like provider keys. The status is read
from the gateway pods (``GET /readyz/mcp``): how many are connected, the tool count, the last error.
The agent-mode limits and the gateway's own ``/mcp`` endpoint are the gateway's (``LLMGateway.spec.mcp``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from asbru_gateway.config.mcp import McpProtocol, McpTransport
from asbru_operator.crd_models.common import (
    BasicStatus,
    CRDModel,
    DNSLabel,
    LabelSelector,
    SecretKeySelector,
    cel_rules,
)
from asbru_operator.crd_models.provider import ServiceRef

_HEADER = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$"
_ENV = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
HeaderName = Annotated[str, Field(pattern=_HEADER, max_length=128)]
EnvName = Annotated[str, Field(pattern=_ENV, max_length=128)]
ToolPattern = Annotated[str, Field(min_length=1, max_length=256)]
Text = Annotated[str, Field(max_length=4096)]


class SecretHeader(CRDModel):
    """An HTTP header whose value is a Secret's key (``Authorization: Bearer ...``)."""

    name: HeaderName
    secret_key_ref: SecretKeySelector
    prefix: Annotated[str, Field(max_length=64)] = Field("", description="Put before the value ('Bearer ').")


class SecretEnv(CRDModel):
    """An environment variable of a stdio server whose value is a Secret's key."""

    name: EnvName
    secret_key_ref: SecretKeySelector


class ToolFilterSpec(CRDModel):
    include: list[ToolPattern] = Field(default_factory=lambda: ["*"], max_length=256)
    exclude: list[ToolPattern] = Field(default_factory=list, max_length=256)


class KeyGrantSpec(CRDModel):
    """Tools a virtual key may use ('*': any key)."""

    key: Annotated[str, Field(min_length=1, max_length=253)]
    tools: list[ToolPattern] = Field(default_factory=lambda: ["*"], max_length=256)


class McpTimeoutsSpec(CRDModel):
    connect_seconds: float | None = Field(None, gt=0, le=300)
    call_seconds: float | None = Field(None, gt=0, le=3600)
    health_interval_seconds: float | None = Field(None, ge=1, le=3600)


_SERVER_RULES = (
    {
        "rule": "self.transport == 'stdio' ? has(self.command) : (has(self.url) || has(self.serviceRef))",
        "message": "stdio needs a command; http and sse need a url or a serviceRef",
    },
)


class LLMMCPServerSpec(CRDModel, json_schema_extra=cel_rules(*_SERVER_RULES)):
    """Desired state of an LLMMCPServer."""

    transport: McpTransport = McpTransport.HTTP
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+", max_length=2048)] | None = None
    service_ref: ServiceRef | None = Field(None, description="An in-cluster Service instead of a url.")
    headers: dict[HeaderName, Text] = Field(default_factory=dict, max_length=64)
    secret_headers: list[SecretHeader] = Field(default_factory=list, max_length=16)
    command: Annotated[str, Field(min_length=1, max_length=4096)] | None = Field(
        None, description="stdio: a program in the gateway image (or its venv)."
    )
    args: list[Text] = Field(default_factory=list, max_length=256)
    env: dict[EnvName, Text] = Field(default_factory=dict, max_length=64)
    secret_env: list[SecretEnv] = Field(default_factory=list, max_length=16)
    protocol: McpProtocol = McpProtocol.AUTO
    tools: ToolFilterSpec | None = None
    auto_execute: list[ToolPattern] = Field(default_factory=list, max_length=256)
    timeouts: McpTimeoutsSpec | None = None
    virtual_keys: list[KeyGrantSpec] = Field(
        default_factory=list, max_length=1024, description="Grants per virtual key (deny by default)."
    )
    anonymous: bool = Field(True, description="Callers without a virtual key (governance off) may use it.")
    gateway_selector: LabelSelector | None = Field(None, description="Default: every LLMGateway here.")


class LLMMCPServerStatus(BasicStatus):
    """Observed state, from the gateway pods that use it."""

    connected: Annotated[str, Field(max_length=32)] | None = Field(None, description="N/M pods connected.")
    tool_count: int | None = Field(None, ge=0)
    protocol_version: Annotated[str, Field(max_length=32)] | None = None
    last_error: Annotated[str, Field(max_length=1024)] | None = None


class McpBundleSpec(CRDModel):
    """``/mcp/<name>``: tools of several servers ('server/tool', 'server/*')."""

    name: DNSLabel
    tools: list[Annotated[str, Field(min_length=1, max_length=300)]] = Field(min_length=1, max_length=1024)


class GatewayMcpSpec(CRDModel):
    """The gateway side of MCP: agent-mode limits and its own ``/mcp`` endpoint."""

    max_depth: int | None = Field(None, ge=1, le=64, description="Agent mode: rounds of tool calls.")
    max_time_seconds: float | None = Field(None, gt=0, le=3600, description="Agent mode: wall time.")
    serve: bool = Field(False, description="Serve /mcp (the tools each caller may use).")
    token_secret_ref: SecretKeySelector | None = Field(
        None, description="Bearer token /mcp callers present when governance is off."
    )
    allowed_hosts: list[Annotated[str, Field(min_length=1, max_length=300)]] = Field(
        default_factory=list, max_length=64, description="Extra Host values (the Service's names are added)."
    )
    bundles: list[McpBundleSpec] = Field(default_factory=list, max_length=256)
    log_content: bool = Field(False, description="Log tool-call arguments and results.")
