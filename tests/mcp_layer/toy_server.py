"""A small MCP server written with the SDK's ``MCPServer``: tools that answer, fail, hang and crash.

Run over stdio (``python -m tests.mcp_layer.toy_server``), or served over streamable HTTP (both protocol
eras: the SDK routes 2026-07-28 requests by their header) and legacy SSE on 127.0.0.1 in a thread
(``serve_http``, ``serve_sse``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError


def build(name: str = "toy") -> MCPServer:
    server = MCPServer(name)

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def shout(text: str) -> str:
        """The text in capitals."""
        return text.upper()

    @server.tool()
    def fail(reason: str = "it went wrong") -> str:
        """Always fails, saying why."""
        raise ToolError(reason)

    @server.tool()
    async def hang() -> str:
        """Never answers."""
        await asyncio.Event().wait()
        return "never"

    @server.tool()
    def crash() -> str:
        """Ends the server's process (stdio) at once."""
        os._exit(3)

    return server


@contextmanager
def _serve(app: Any) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="toy-mcp", daemon=True)
    thread.start()
    for _ in range(1000):
        if server.started or not thread.is_alive():
            break
        thread.join(0.01)
    if not server.started:
        raise RuntimeError("toy MCP server did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def serve_http() -> Iterator[str]:
    """Streamable HTTP at ``URL/mcp``, both eras (sessions for 2025 clients)."""
    with _serve(build().streamable_http_app()) as url:
        yield url + "/mcp"


@contextmanager
def serve_sse() -> Iterator[str]:
    """The legacy HTTP+SSE transport at ``URL/sse``."""
    with _serve(build().sse_app()) as url:
        yield url + "/sse"


def stdio_command() -> dict[str, Any]:
    """The config fields that run this server over stdio."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return {"command": sys.executable, "args": ["-m", "tests.mcp_layer.toy_server"], "cwd": root}


if __name__ == "__main__":
    build().run()
