"""What the gateway knows of one tool, and what one call of it gave, without the SDK's types.

``McpTool`` is built from a server's ``tools/list`` entry once per listing: its core ``Tool`` (the
OpenAI-shaped function every provider path takes) is built then, so offering it to a request costs
nothing more. ``ToolOutcome`` is one call's result, as the text a model reads in a tool message and
as the wire dict a proxied MCP client gets unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from asbru_gateway.core.schema import Tool

_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass(frozen=True, slots=True)
class McpTool:
    """One tool of one server, under its exposed (unique) name."""

    server: str
    name: str
    """The server's own name for it (what ``tools/call`` takes)."""
    exposed: str
    """``<server>__<tool>``: what models and MCP clients of the gateway see."""
    wire: dict[str, Any]
    """The server's ``tools/list`` entry (JSON, camelCase), to serve again under ``exposed``."""
    core: Tool = field(init=False)

    def __post_init__(self) -> None:
        schema = self.wire.get("inputSchema")
        function: dict[str, Any] = {
            "name": self.exposed,
            "parameters": schema if isinstance(schema, dict) and schema else _EMPTY_SCHEMA,
        }
        description = self.wire.get("description") or self.wire.get("title")
        if isinstance(description, str) and description:
            function["description"] = description
        object.__setattr__(self, "core", {"type": "function", "function": function})

    def served(self) -> dict[str, Any]:
        """The ``tools/list`` entry the gateway's own MCP endpoint serves (the exposed name)."""
        return {**self.wire, "name": self.exposed}


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """One finished call: a result (possibly ``is_error``, the tool's own failure) or the gateway's
    reason it has none (``error``: not connected, timed out, protocol error)."""

    server: str
    tool: str
    is_error: bool
    text: str
    """What the model reads in the tool message."""
    result: dict[str, Any] | None = None
    """The server's ``CallToolResult`` as JSON (None when the gateway produced the error)."""
    outcome: str = "ok"
    """For metrics and logs: ``ok``, ``tool_error``, ``timeout``, ``unavailable``, ``error``, ``denied``."""

    @classmethod
    def failed(cls, server: str, tool: str, outcome: str, message: str) -> ToolOutcome:
        return cls(server, tool, True, message, None, outcome)

    def as_result(self) -> dict[str, Any]:
        """A ``CallToolResult`` (JSON) for an MCP client: the server's own, or one saying what failed."""
        if self.result is not None:
            return self.result
        return {"content": [{"type": "text", "text": self.text}], "isError": True}


def result_text(result: dict[str, Any]) -> str:
    """A ``CallToolResult`` as one text for a model: text blocks joined, other blocks described,
    structured content as JSON when there is no text; an error result says so first."""
    parts: list[str] = []
    for block in result.get("content") or ():
        if isinstance(block, dict):
            parts.append(_block_text(block))
    text = "\n".join(part for part in parts if part)
    structured = result.get("structuredContent")
    if not text and structured is not None:
        text = orjson.dumps(structured).decode()
    if result.get("isError"):
        return "Error: " + (text or "the tool reported an error")
    return text


def _block_text(block: dict[str, Any]) -> str:
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind in ("image", "audio"):
        return f"[{kind}: {block.get('mimeType', 'unknown type')}]"
    if kind == "resource":
        resource = block.get("resource") or {}
        if isinstance(resource, dict) and isinstance(resource.get("text"), str):
            return str(resource["text"])
        return f"[resource: {resource.get('uri', '') if isinstance(resource, dict) else ''}]"
    if kind == "resource_link":
        return f"[resource link: {block.get('uri', '')}]"
    return f"[{kind} content]"
