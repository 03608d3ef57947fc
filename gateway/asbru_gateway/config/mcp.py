"""The MCP section of the config contract: servers the gateway connects to, agent limits, ``/mcp``.

Kept apart from ``model.py`` (which imports it) because it is a contract of its own: the operator
renders ``LLMMCPServer`` resources into ``McpServerConfig`` entries, a config file writes them by
hand. The same rules hold as everywhere in the contract: frozen, ``extra="forbid"``, secrets only
as references (``env:``, ``file:``, ``secret:``), never values.

Tool names in these lists are the *server's own* names (``get_current_time``), patterns allowed
(``*``, ``get_*``); models and clients see them as ``<server>__<tool>`` (``mcp.names``).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from asbru_gateway.config.compat import ContractModel

_SERVER_NAME = r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$"
_SECRET_REF = r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:/.+|secret:[A-Za-z0-9._-]+)$"  # noqa: S105 - a pattern
_HEADER = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$"

ServerName = Annotated[
    str,
    Field(
        pattern=_SERVER_NAME,
        description="Lowercase letters, digits and '-', starting with a letter, at most 32 characters: "
        "it prefixes the server's tool names, which providers limit to 64 characters.",
    ),
]
ToolPattern = Annotated[str, Field(min_length=1, max_length=256, description="A tool name; '*' globs.")]
SecretRef = Annotated[str, Field(pattern=_SECRET_REF)]
HeaderName = Annotated[str, Field(pattern=_HEADER)]


_Frozen = ContractModel


class McpTransport(StrEnum):
    """How the gateway reaches a server."""

    HTTP = "http"
    """Streamable HTTP (``url``): an in-cluster Service or any URL. The one to prefer."""
    STDIO = "stdio"
    """A subprocess the gateway starts (``command``) and talks to over stdin/stdout."""
    SSE = "sse"
    """The legacy HTTP+SSE transport (2024-11-05), for servers that offer nothing else."""


class McpProtocol(StrEnum):
    """Which protocol era the gateway speaks to a server."""

    AUTO = "auto"
    """Probe ``server/discover`` (2026-07-28); fall back to the ``initialize`` handshake."""
    MODERN = "modern"
    """The stateless 2026-07-28 revision: no handshake, no session."""
    LEGACY = "legacy"
    """The session-based revisions (2024-11-05 .. 2025-11-25): ``initialize`` handshake, a session."""


class ToolFilter(_Frozen):
    """Which of a server's tools the gateway offers at all (exclude wins)."""

    include: tuple[ToolPattern, ...] = Field(("*",), max_length=256)
    exclude: tuple[ToolPattern, ...] = Field((), max_length=256)


class KeyGrant(_Frozen):
    """Tools of this server a virtual key may use (and see)."""

    key: str = Field(min_length=1, max_length=253, description="A virtual key's name, or '*' for any key.")
    tools: tuple[ToolPattern, ...] = Field(("*",), max_length=256)


class McpAccess(_Frozen):
    """Who may use a server's tools. Deny by default for authenticated callers.

    A caller authenticated by a virtual key (``request.identity``, set by the governance plugin)
    gets a tool only if a grant here names its key (or ``*``), or if the key's own MCP allow-list
    (``identity.attributes["mcp"]``: server name -> tool patterns) names it. A request without an
    identity (governance off) gets the server's tools when ``anonymous`` is true.
    """

    virtual_keys: tuple[KeyGrant, ...] = Field((), max_length=1024)
    anonymous: bool = Field(True, description="Requests with no authenticated identity may use it.")


class McpTimeouts(_Frozen):
    connect_s: float = Field(10.0, gt=0, le=300, description="Connect, handshake and first tool list.")
    call_s: float = Field(60.0, gt=0, le=3600, description="One tool call.")
    health_interval_s: float = Field(30.0, ge=1, le=3600, description="Ping (and re-list) period.")
    backoff_initial_s: float = Field(0.5, gt=0, le=60, description="First reconnect delay; doubles.")
    backoff_max_s: float = Field(30.0, gt=0, le=600)


class McpServerConfig(_Frozen):
    """One MCP server: where it is, how to talk to it, which tools it offers, and to whom."""

    name: ServerName
    transport: McpTransport
    url: str | None = Field(None, description="http / sse: the endpoint URL.")
    headers: dict[HeaderName, str] = Field(default_factory=dict, description="Plain HTTP headers.")
    secret_headers: dict[HeaderName, SecretRef] = Field(
        default_factory=dict, description="HTTP headers whose values are secrets (Authorization, ...)."
    )
    command: str | None = Field(None, min_length=1, max_length=4096, description="stdio: the program.")
    args: tuple[Annotated[str, Field(max_length=4096)], ...] = Field((), max_length=256)
    env: dict[str, str] = Field(default_factory=dict, description="stdio: plain environment variables.")
    secret_env: dict[str, SecretRef] = Field(default_factory=dict, description="stdio: secret variables.")
    cwd: str | None = Field(None, max_length=4096)
    protocol: McpProtocol = McpProtocol.AUTO
    tools: ToolFilter = Field(default_factory=ToolFilter)  # type: ignore[arg-type]
    auto_execute: tuple[ToolPattern, ...] = Field(
        (), max_length=256, description="Tools the gateway runs itself in agent mode (patterns)."
    )
    timeouts: McpTimeouts = Field(default_factory=McpTimeouts)  # type: ignore[arg-type]
    access: McpAccess = Field(default_factory=McpAccess)  # type: ignore[arg-type]

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("url must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _transport_fields(self) -> McpServerConfig:
        if self.transport == McpTransport.STDIO:
            if not self.command:
                raise ValueError(f"MCP server {self.name!r}: transport stdio needs a command")
            if self.url or self.headers or self.secret_headers:
                raise ValueError(f"MCP server {self.name!r}: url and headers are for http and sse")
        else:
            if not self.url:
                raise ValueError(f"MCP server {self.name!r}: transport {self.transport} needs a url")
            if self.command or self.args or self.env or self.secret_env or self.cwd:
                raise ValueError(f"MCP server {self.name!r}: command, args, env and cwd are for stdio")
        if self.transport == McpTransport.SSE and self.protocol == McpProtocol.MODERN:
            raise ValueError(f"MCP server {self.name!r}: the SSE transport predates the modern protocol")
        return self

    def secret_refs(self) -> list[str]:
        return [*self.secret_headers.values(), *self.secret_env.values()]

    def connection_fields(self) -> dict[str, Any]:
        """What a connection depends on: a change here reconnects; anything else (filters, access,
        auto-execute, call timeout) applies to the live connection."""
        return self.model_dump(mode="json", include=_CONNECTION_FIELDS)


_CONNECTION_FIELDS = {
    "name",
    "transport",
    "url",
    "headers",
    "secret_headers",
    "command",
    "args",
    "env",
    "secret_env",
    "cwd",
    "protocol",
}


class McpBundle(_Frozen):
    """A named set of tools from several servers, served at ``/mcp/<name>`` (a "virtual MCP")."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
    tools: tuple[Annotated[str, Field(min_length=1, max_length=300)], ...] = Field(
        min_length=1,
        max_length=1024,
        description="'server/tool' or 'server/*' (tool patterns glob); the caller's access still applies.",
    )


class McpAgentConfig(_Frozen):
    """Agent mode: the gateway runs auto-executed tools and calls the model again, within limits."""

    max_depth: int = Field(8, ge=1, le=64, description="Rounds of tool calls before the loop stops.")
    max_time_s: float = Field(120.0, gt=0, le=3600, description="Wall time of the whole loop.")
    max_parallel_calls: int = Field(8, ge=1, le=64, description="Tool calls of one round run at once.")


class McpServeConfig(_Frozen):
    """The gateway as an MCP server at ``/mcp`` (and ``/mcp/<bundle>``)."""

    enabled: bool = False
    token: SecretRef | None = Field(
        None,
        description="Bearer token callers must present when no plugin authenticates them (governance "
        "off). Without either, /mcp is open to whoever reaches an allowed Host.",
    )
    allowed_hosts: tuple[Annotated[str, Field(min_length=1, max_length=300)], ...] = Field(
        ("127.0.0.1:*", "localhost:*", "[::1]:*"),
        max_length=64,
        description="Host header values accepted ('host:*' for any port, '*' for any host): DNS "
        "rebinding protection. In a cluster, add the Service's names.",
    )
    allowed_origins: tuple[Annotated[str, Field(min_length=1, max_length=300)], ...] = Field(
        ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"), max_length=64
    )
    bundles: tuple[McpBundle, ...] = Field((), max_length=256)


class McpConfig(_Frozen):
    """Everything MCP: servers, agent limits, the gateway's own MCP endpoint."""

    servers: tuple[McpServerConfig, ...] = Field((), max_length=256)
    agent: McpAgentConfig = Field(default_factory=McpAgentConfig)  # type: ignore[arg-type]
    serve: McpServeConfig = Field(default_factory=McpServeConfig)  # type: ignore[arg-type]
    log_content: bool = Field(
        False, description="Log tool-call arguments and results (off: server, tool, latency, outcome)."
    )

    @model_validator(mode="after")
    def _unique(self) -> McpConfig:
        for kind, names in (
            ("MCP server", [s.name for s in self.servers]),
            ("MCP bundle", [b.name for b in self.serve.bundles]),
        ):
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    raise ValueError(f"duplicate {kind} name {name!r}")
                seen.add(name)
        known = {server.name for server in self.servers}
        for bundle in self.serve.bundles:
            for entry in bundle.tools:
                server, slash, tool = entry.partition("/")
                if not slash or not tool:
                    raise ValueError(f"MCP bundle {bundle.name!r}: {entry!r} is not 'server/tool'")
                if server not in known:
                    raise ValueError(f"MCP bundle {bundle.name!r} names unknown MCP server {server!r}")
        return self

    def secret_refs(self) -> list[str]:
        refs = [ref for server in self.servers for ref in server.secret_refs()]
        if self.serve.token:
            refs.append(self.serve.token)
        return refs
