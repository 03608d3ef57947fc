"""Which tools a caller gets: the server's filter, the caller's grants, the request's own narrowing.

Three filters stack, and a tool must pass each (as in Bifrost):

1. the server's ``tools`` include/exclude lists (config);
2. access: a request without identity gets the server when ``access.anonymous``; an authenticated
   one (a virtual key, ``request.identity``) only the tools a grant names: the server's
   ``access.virtual_keys`` entries for its key (or ``*``), or the key's own allow-list in
   ``identity.attributes["mcp"]`` (server name -> tool patterns). No grant: no tools (deny by default);
3. the request's headers, which can only narrow: ``x-bf-mcp-include-clients`` /
   ``x-asbru-mcp-servers`` (server names) and ``x-bf-mcp-include-tools`` / ``x-asbru-mcp-tools``
   (``server/tool``, ``server/*``, Bifrost's ``server-tool``, or an exposed ``server__tool``). A header
   that is present but empty allows nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from asbru_gateway.config.mcp import McpServerConfig
from asbru_gateway.core.identity import MCP_ATTRIBUTE, Identity
from asbru_gateway.mcp.names import matches
from asbru_gateway.mcp.tools import McpTool

SERVER_HEADERS = ("x-asbru-mcp-servers", "x-bf-mcp-include-clients")
TOOL_HEADERS = ("x-asbru-mcp-tools", "x-bf-mcp-include-tools")
IDENTITY_ATTRIBUTE = MCP_ATTRIBUTE
"""``Identity.attributes`` key under which an authenticating plugin puts a key's MCP allow-list."""


def configured(server: McpServerConfig, tools: Iterable[McpTool]) -> list[McpTool]:
    """The tools the server's include/exclude lists let through."""
    include, exclude = server.tools.include, server.tools.exclude
    return [tool for tool in tools if matches(include, tool.name) and not matches(exclude, tool.name)]


def grants(server: McpServerConfig, identity: Identity | None) -> tuple[str, ...] | None:
    """Tool patterns of ``server`` the caller may use; None: none at all."""
    if identity is None:
        return ("*",) if server.access.anonymous else None
    patterns: list[str] = []
    for grant in server.access.virtual_keys:
        if grant.key in (identity.key, "*"):
            patterns.extend(grant.tools)
    own = identity.attributes.get(IDENTITY_ATTRIBUTE)
    if isinstance(own, Mapping):
        listed = own.get(server.name)
        if isinstance(listed, str):
            patterns.append(listed)
        elif isinstance(listed, Sequence):
            patterns.extend(str(pattern) for pattern in listed)
    return tuple(patterns) or None


def allowed(server: McpServerConfig, tools: Iterable[McpTool], identity: Identity | None) -> list[McpTool]:
    patterns = grants(server, identity)
    if patterns is None:
        return []
    return [tool for tool in configured(server, tools) if matches(patterns, tool.name)]


class Narrowing:
    """The request's own narrowing headers, parsed (None where a header is absent)."""

    __slots__ = ("servers", "tools")

    def __init__(self, servers: frozenset[str] | None, tools: tuple[str, ...] | None) -> None:
        self.servers = servers
        self.tools = tools

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Narrowing | None:
        servers = _listed(headers, SERVER_HEADERS)
        tools = _listed(headers, TOOL_HEADERS)
        if servers is None and tools is None:
            return None
        return cls(None if servers is None else frozenset(servers), None if tools is None else tuple(tools))

    def admits(self, tool: McpTool, server_names: Iterable[str]) -> bool:
        if self.servers is not None and tool.server not in self.servers:
            return False
        if self.tools is None:
            return True
        return any(_entry_matches(entry, tool, server_names) for entry in self.tools)


def _listed(headers: Mapping[str, str], names: tuple[str, ...]) -> list[str] | None:
    found: list[str] | None = None
    for name in names:
        value = headers.get(name)
        if value is not None:
            found = (found or []) + [part.strip() for part in value.split(",") if part.strip()]
    return found


def _entry_matches(entry: str, tool: McpTool, server_names: Iterable[str]) -> bool:
    server, slash, pattern = entry.partition("/")
    if slash:
        return server == tool.server and matches((pattern,), tool.name)
    if "__" in entry:
        return matches((entry,), tool.exposed)
    for name in server_names:  # Bifrost's older "client-tool" form: the server name is a prefix
        if entry.startswith(name + "-") and name == tool.server:
            return matches((entry[len(name) + 1 :],), tool.name)
    return False
