#!/usr/bin/env python3
"""Is SSE forwarded as it arrives? A slow mock upstream plus a client, in one process (aiohttp).

The mock serves ``POST /v1/chat/completions`` (any body) as an OpenAI stream of ``--chunks``
events, ``--interval`` seconds apart, each stamped with the moment it was written
(``"bench_sent": <time.monotonic()>``; the gateway forwards OpenAI events unchanged). The client
posts a streaming request through the gateway (``--gateway``, whose route ``--model`` must point
at this mock) and, as a baseline, straight to the mock. For every event it records when it
arrived, so on the same clock:

  delay     = arrival - bench_sent        (how long the gateway held the event)
  first     = first event's arrival - request start
  last_sent = when the mock wrote its last event

A buffering proxy shows up as a first event that arrives only around ``last_sent``, or delays
near the whole stream length. Forwarding "as it arrives" means: the first event is in the
client's hands before the mock has written the second one, and no event is held for more than
half an interval. Prints one JSON line (``SSECHECK {...}``) for bench.py; exit code 0 = pass.

The mock is deliberately not nginx: nginx's ``return`` sends the whole stream at once, so it
cannot tell forwarding from buffering.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

STAMP = re.compile(rb'"bench_sent":([0-9.]+)')
REQUEST = {
    "model": "",
    "messages": [{"role": "user", "content": "Count slowly."}],
    "stream": True,
    "max_tokens": 32,
}


def chunk_event(index: int, content: str, finish: str | None = None) -> bytes:
    event = {
        "id": "chatcmpl-sse-check",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "slow-mock",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}],
        "bench_index": index,
        "bench_sent": time.monotonic(),
    }
    return b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"


def make_mock(chunks: int, interval: float) -> web.Application:
    async def chat(request: web.Request) -> web.StreamResponse:
        await request.read()
        headers = {"content-type": "text/event-stream", "cache-control": "no-cache"}
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        for index in range(chunks):
            if index:
                await asyncio.sleep(interval)
            last = index == chunks - 1
            await response.write(chunk_event(index, f" t{index}", "stop" if last else None))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


async def measure(session: ClientSession, url: str, model: str) -> dict[str, Any]:
    """One streaming request; per event: arrival time and the mock's send stamp."""
    arrivals: list[tuple[float, float]] = []  # (arrival, sent)
    buffer = b""
    reads = 0
    started = time.monotonic()
    async with session.post(url, json={**REQUEST, "model": model}) as response:
        if response.status != 200:
            return {"error": f"HTTP {response.status}: {(await response.text())[:200]}"}
        async for data in response.content.iter_any():
            now = time.monotonic()
            reads += 1
            buffer += data
            *events, buffer = buffer.split(b"\n\n")
            arrivals += [(now, float(m.group(1))) for e in events if (m := STAMP.search(e))]
    if not arrivals:
        return {"error": "no stamped event received"}
    delays = [arrival - sent for arrival, sent in arrivals]
    return {
        "events": len(arrivals),
        "reads": reads,
        "first_ms": 1000 * (arrivals[0][0] - started),
        "last_ms": 1000 * (arrivals[-1][0] - started),
        "last_sent_ms": 1000 * (arrivals[-1][1] - started),
        "second_sent_ms": 1000 * (arrivals[1][1] - started) if len(arrivals) > 1 else None,
        "delay_p50_ms": 1000 * statistics.median(delays),
        "delay_max_ms": 1000 * max(delays),
    }


def verdict(result: dict[str, Any], chunks: int, interval: float) -> str:
    """Empty string when the stream was forwarded as it arrived, else the reason it was not."""
    if "error" in result:
        return str(result["error"])
    if result["events"] != chunks:
        return f"{result['events']} of {chunks} events arrived"
    if result["second_sent_ms"] is not None and result["first_ms"] >= result["second_sent_ms"]:
        return "the first event arrived only after the mock had sent the second (buffered)"
    if result["delay_max_ms"] > 500 * interval:
        held, half = result["delay_max_ms"], 500 * interval
        return f"an event was held {held:.0f} ms (more than half the interval, {half:.0f} ms)"
    return ""


async def main_async(args: argparse.Namespace) -> int:
    runner = web.AppRunner(make_mock(args.chunks, args.interval), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    out: dict[str, Any] = {"chunks": args.chunks, "interval_ms": 1000 * args.interval}
    try:
        if args.serve_only:  # the mock alone, until killed (for trying a gateway by hand)
            await asyncio.Event().wait()
        limit = ClientTimeout(total=args.chunks * args.interval + 30)
        async with ClientSession(timeout=limit) as session:
            direct, via = f"http://127.0.0.1:{args.port}", args.gateway.rstrip("/")
            out["direct"] = await measure(session, f"{direct}/v1/chat/completions", "x")
            out["gateway"] = await measure(session, f"{via}/v1/chat/completions", args.model)
    finally:
        await runner.cleanup()
    out["problem"] = verdict(out["gateway"], args.chunks, args.interval)
    out["ok"] = not out["problem"]
    print("SSECHECK " + json.dumps(out), flush=True)
    return 0 if out["ok"] else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="port of the slow mock on 127.0.0.1")
    parser.add_argument("--gateway", default="http://127.0.0.1:8080", help="gateway base URL (loopback)")
    parser.add_argument("--model", default="slow-stream", help="gateway route that points at this mock")
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between two events")
    parser.add_argument("--serve-only", action="store_true", help="run the mock only, until killed")
    args = parser.parse_args()
    if not args.gateway.startswith(("http://127.", "http://localhost")):
        parser.error("the gateway must be on loopback")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
