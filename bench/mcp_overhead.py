"""CPU per request with MCP tools injected, against the same request without MCP (in-process).

The ASGI app is called directly (no sockets), the upstream is canned (an OpenAI answer with no tool
call), so what differs between the runs is only what MCP adds: the offer lookup, 20 tools added to
the upstream body, and in agent mode the answer read for tool calls. Usage:

    .venv/bin/python bench/mcp_overhead.py [N]      # prints CPU us/request per variant, JSON and SSE
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import uvloop

import inprocess  # sibling module; patches the upstream before the app exists
from asbru_gateway.app import AppSettings, create_app
from asbru_gateway.config.loader import parse_config
from asbru_gateway.mcp.tools import McpTool

TOOLS = 20


def _config(mcp: str) -> dict[str, Any]:
    config = inprocess.mock_config(route="m", key_env="BENCH_KEY")
    if mcp != "none":
        server = {
            "name": "bench",
            "transport": "http",
            "url": "http://127.0.0.1:1/mcp",
            "timeouts": {"connect_s": 0.01},
        }
        if mcp == "agent":
            server["auto_execute"] = ["*"]
        config["mcp"] = {"servers": [server]}
    return config


def _connect_fake(app: Any) -> None:
    """Give the bench server 20 tools and mark it up, without a real server (its supervisor stopped)."""
    registry = app.gateway.mcp
    for _, connection in registry._live.values():
        if connection._task is not None:
            connection._task.cancel()
        schema = {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        }
        connection.tools = tuple(
            McpTool(
                "bench",
                f"tool_{i}",
                f"bench__tool_{i}",
                {"name": f"tool_{i}", "description": f"Tool number {i}.", "inputSchema": schema},
            )
            for i in range(TOOLS)
        )
        connection.status.connected = True
        connection.status.tool_count = TOOLS
    registry.generation += 1


async def _measure(mcp: str, stream: bool, n: int) -> float:
    app = create_app(AppSettings(), config=parse_config(_config(mcp)))
    await app.startup()
    if mcp != "none":
        await asyncio.sleep(0.05)
        _connect_fake(app)
    body = inprocess.chat_body("m", stream=stream)
    spent = await inprocess.cpu_per_request(app, body=body, n=n, warmup=n // 10)
    await app.shutdown()
    return spent * 1e6


def main() -> None:
    os.environ["BENCH_KEY"] = "sk-bench-0123456789"
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    for stream in (False, True):
        results = {mcp: uvloop.run(_measure(mcp, stream, n)) for mcp in ("none", "inject", "agent")}
        base = results["none"]
        kind = "SSE " if stream else "JSON"
        print(
            f"{kind}: no MCP {base:.1f} us/request; 20 tools injected +{results['inject'] - base:.1f} us; "
            f"agent mode, no call +{results['agent'] - base:.1f} us"
        )


if __name__ == "__main__":
    main()
