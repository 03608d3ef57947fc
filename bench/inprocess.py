"""CPU per request of the gateway itself: the ASGI app called directly, a canned upstream answer.

Shared by the in-process benchmarks (``governance_cost.py``, ``mcp_overhead.py``): no sockets (but
what a variant adds itself, e.g. Redis), so two variants differ only by what the gateway does.

    import inprocess                        # before the app is created: the upstream is patched
    app = create_app(AppSettings(), config=parse_config(inprocess.mock_config()))
    await app.startup()
    seconds = await inprocess.cpu_per_request(app, body=inprocess.chat_body(), n=20_000)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "gateway"))  # this checkout's gateway, whatever the venv installed

from asbru_gateway.providers import transport  # noqa: E402

MODEL = "gpt-4o-mini"
JSON_ANSWER = orjson.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": MODEL,
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
_CHUNK = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": MODEL}
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
    """The upstream's answer, already read: JSON or one SSE block."""

    def __init__(self, stream: bool) -> None:
        self.status = 200
        self.headers = {"content-type": "text/event-stream" if stream else "application/json"}

    async def read(self) -> bytes:
        return JSON_ANSWER

    async def iter_chunks(self) -> Any:
        yield SSE_ANSWER

    def release(self) -> None:
        return None


async def _send_upstream(self: Any, request: Any, *, stream: bool) -> Canned:
    return Canned(stream)


transport.AiohttpClient.send = _send_upstream  # type: ignore[method-assign,assignment]


def mock_config(route: str = MODEL, key_env: str = "BENCH_UPSTREAM_KEY") -> dict[str, Any]:
    """One OpenAI provider (never reached: answers are canned), ``route`` to it, telemetry on."""
    return {
        "providers": [
            {
                "name": "mock",
                "type": "openai",
                "base_url": "http://127.0.0.1:1/v1",
                "keys": [{"name": "k1", "secret": f"env:{key_env}"}],
            }
        ],
        "routes": [{"name": route, "targets": [{"provider": "mock", "model": MODEL}]}],
        "plugins": [{"name": "telemetry", "type": "telemetry", "order": -100}],
    }


def chat_body(model: str = MODEL, *, stream: bool = False) -> bytes:
    return orjson.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream})


async def cpu_per_request(
    app: Any, *, body: bytes, n: int, warmup: int = 500, headers: Sequence[tuple[bytes, bytes]] = ()
) -> float:
    """CPU seconds per ``POST /v1/chat/completions`` of ``body`` over ``n`` requests (after ``warmup``);
    every answer must be a 200."""
    out: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        out.append(message)

    message = {"type": "http.request", "body": body, "more_body": False}

    async def receive() -> dict[str, Any]:
        return message

    all_headers = [
        (b"host", b"x"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": all_headers,
        "query_string": b"",
    }

    async def batch(count: int) -> None:
        for _ in range(count):
            out.clear()
            await app(dict(scope), receive, send)
            assert out[0]["status"] == 200, out

    await batch(warmup)
    started = time.process_time()
    await batch(n)
    return (time.process_time() - started) / n
