#!/usr/bin/env python3
"""A cheap OpenAI-style mock upstream with latency, big bodies, errors and timed streams (loopback only).

nginx (``mock-upstream.conf``) cannot wait before answering, so the load gate, the isolation and the
soak benchmarks use this instead: a raw asyncio protocol on uvloop with httptools' parser (no web
framework), so that the mock costs little of the core it shares with wrk (~10 µs per request).

  slow_upstream.py --port P [--delay 1.0] [--big-bytes 1048576] [--events 10] [--interval 0.05]

  POST /v1/chat/completions          chat.completion JSON after --delay seconds
  POST /fast/v1/chat/completions     the same at once
  POST /big/v1/chat/completions      a chat.completion of about --big-bytes (one long content string)
  POST /stream/v1/chat/completions   --events SSE chunks --interval apart (chunked), then [DONE]
  POST /error/v1/chat/completions    500 with an OpenAI error body
  POST /ratelimit/v1/chat/completions 429 with Retry-After: 0 and an OpenAI error body
  GET  /health                       ok

Every request body is read in full and discarded. Stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from typing import Any

import httptools

from bench import big_chat

CHAT = (
    b'{"id":"chatcmpl-gate","object":"chat.completion","created":1,"model":"gpt-4o-mini",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}'
)
ERROR = b'{"error":{"message":"mock upstream failure","type":"server_error","code":null,"param":null}}'
RATE = b'{"error":{"message":"mock rate limit","type":"rate_limit_error","code":null,"param":null}}'


def chunk_event(index: int, last: bool) -> bytes:
    delta = {} if last else {"content": f" w{index}"}
    chunk = {
        "id": "chatcmpl-stream",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": "stop" if last else None}],
    }
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


class Settings:
    delay = 1.0
    big = b""
    events = 10
    interval = 0.05


def response(status: int, reason: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n"
        % (status, reason, len(body), extra)
        + body
    )


class MockProtocol(asyncio.Protocol):
    """One connection; requests answered in order (a client pipelining would be served serially)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.write(response(400, b"Bad Request", b"{}", b"connection: close\r\n"))
                self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        path, self.url = self.url.split(b"?", 1)[0], b""
        loop = asyncio.get_running_loop()
        if path == b"/v1/chat/completions":
            loop.call_later(Settings.delay, self.write, response(200, b"OK", CHAT))
        elif path == b"/fast/v1/chat/completions":
            self.write(response(200, b"OK", CHAT))
        elif path == b"/big/v1/chat/completions":
            self.write(response(200, b"OK", Settings.big))
        elif path == b"/stream/v1/chat/completions":
            head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            self.write(head)
            for index in range(Settings.events + 1):
                last = index == Settings.events
                event = chunk_event(index, last) + (b"data: [DONE]\n\n" if last else b"")
                framed = b"%x\r\n%s\r\n" % (len(event), event) + (b"0\r\n\r\n" if last else b"")
                loop.call_later(Settings.interval * (index + 1), self.write, framed)
        elif path == b"/error/v1/chat/completions":
            self.write(response(500, b"Internal Server Error", ERROR))
        elif path == b"/ratelimit/v1/chat/completions":
            self.write(response(429, b"Too Many Requests", RATE, b"retry-after: 0\r\n"))
        elif path == b"/health":
            self.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok")
        else:
            self.write(response(404, b"Not Found", b'{"error":{"message":"unknown path"}}'))

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()

    def done() -> None:
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done)
    server = await loop.create_server(MockProtocol, "127.0.0.1", port, backlog=8192, reuse_address=True)
    await stop
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--big-bytes", type=int, default=1024 * 1024)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.05)
    args = parser.parse_args()
    Settings.delay, Settings.big = args.delay, big_chat(args.big_bytes)
    Settings.events, Settings.interval = args.events, args.interval
    run: Any = asyncio.run
    try:
        import uvloop  # noqa: PLC0415 - optional: plain asyncio works too

        run = uvloop.run
    except ImportError:
        pass
    run(serve(args.port))


if __name__ == "__main__":
    main()
