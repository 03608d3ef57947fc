"""Shared by the MCP tests: configs around the echo provider, an MCP client of the gateway, paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.mcp_layer.toy_server import stdio_command

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "mcp" / "asbru.yaml"
EVERYTHING = ROOT / ".cache" / "npm" / "node_modules" / ".bin" / "mcp-server-everything"
TIME_TOOL = "time__get_current_time"
UTC_TOOL_CALL = '/tool time__get_current_time {"timezone": "UTC"}'


def config(
    *servers: dict[str, Any], plugins: list[dict[str, Any]] | None = None, **mcp: Any
) -> dict[str, Any]:
    """Echo as the model, these MCP servers, ``mcp`` settings (``agent``, ``serve``, ...)."""
    return {
        "providers": [{"name": "echo", "type": "echo"}],
        "plugins": plugins or [],
        "mcp": {"servers": list(servers), **mcp},
    }


def toy(name: str = "toy", **fields: Any) -> dict[str, Any]:
    """The toy server over stdio, every tool auto-executed unless said otherwise."""
    return {"name": name, "transport": "stdio", **stdio_command(), "auto_execute": ["*"], **fields}


def time_server(**fields: Any) -> dict[str, Any]:
    return {
        "name": "time",
        "transport": "stdio",
        "command": "mcp-server-time",
        "auto_execute": ["*"],
        **fields,
    }


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]
