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
import time
from typing import Any

import orjson
import uvloop

from asbru_gateway.app import AppSettings, create_app
from asbru_gateway.config.loader import parse_config
from asbru_gateway.mcp.tools import McpTool
from asbru_gateway.providers import transport

TOOLS = 20
JSON_ANSWER = orjson.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from the bench."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 24, "completion_tokens": 5, "total_tokens": 29},
    }
)
_CHUNK = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
SSE_ANSWER = (
    b"".join(
        b"data: "
        + orjson.dumps({**_CHUNK, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        + b"\n\n"
        for delta, finish in (
            ({"role": "assistant", "content": ""}, None),
            ({"content": "Hello"}, None),
            ({}, "stop"),
        )
    )
    + b"data: [DONE]\n\n"
)


class Canned:
    def __init__(self, stream: bool) -> None:
        self.status = 200
        self.headers = {"content-type": "text/event-stream" if stream else "application/json"}
        self._stream = stream

    async def read(self) -> bytes:
        return JSON_ANSWER

    async def iter_chunks(self) -> Any:
        yield SSE_ANSWER

    def release(self) -> None:
        return None


async def _send_up(self: Any, request: Any, *, stream: bool) -> Canned:
    return Canned(stream)


transport.AiohttpClient.send = _send_up  # type: ignore[method-assign,assignment]


def _config(mcp: str) -> dict[str, Any]:
    config: dict[str, Any] = {
        "providers": [
            {
                "name": "mock",
                "type": "openai",
                "base_url": "http://127.0.0.1:1/v1",
                "keys": [{"name": "k", "secret": "env:BENCH_KEY"}],
            }
        ],
        "routes": [{"name": "m", "targets": [{"provider": "mock", "model": "gpt-4o-mini"}]}],
        "plugins": [{"name": "telemetry", "type": "telemetry", "order": -100}],
    }
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
    body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream})
    out: list[Any] = []

    async def send(message: Any) -> None:
        out.append(message)

    message = {"type": "http.request", "body": body, "more_body": False}

    async def receive() -> Any:
        return message

    headers = [
        (b"host", b"x"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": headers,
        "query_string": b"",
    }
    for _ in range(n // 10):  # warm up
        out.clear()
        await app(dict(scope), receive, send)
    started = time.process_time()
    for _ in range(n):
        out.clear()
        await app(dict(scope), receive, send)
    spent = time.process_time() - started
    assert out[0]["status"] == 200, out
    await app.shutdown()
    return spent / n * 1e6


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
