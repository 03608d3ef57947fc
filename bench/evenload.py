#!/usr/bin/env python3
"""A closed-loop load like wrk's, but with the connections' starts spread evenly over --stagger seconds.

wrk opens every connection and sends every first request at once; with a mock that answers after
exactly 1 s, those requests stay in one synchronised wave, and a gateway on one core meets all of
them within a few hundred milliseconds every second. A real client population does not arrive in
step. This client starts connection i at i * stagger / conns, so arrivals are even from the start;
comparing it with wrk separates what the gateway adds per request from what the wave adds.

  evenload.py --url http://127.0.0.1:P/v1/chat/completions --conns 1000 --duration 30 --stagger 1.0
  env BENCH_MODEL, BENCH_KEY (as wrk-chat.lua). Prints one ``WRKJSON {...}`` line with wrk-chat.lua's
  fields (latency in µs; latency to the last byte; non-2xx answers counted in err_status).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.parse
from typing import Any


async def run(url: str, conns: int, duration: float, stagger: float) -> dict[str, Any]:
    u = urllib.parse.urlsplit(url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    body = json.dumps({
        "model": os.environ.get("BENCH_MODEL", "gpt-4o-mini"),
        "messages": [{"role": "system", "content": "You are a helpful assistant."},
                     {"role": "user", "content": "Say hello in one short sentence."}],
        "max_tokens": 32, "temperature": 0,
    }).encode()  # fmt: skip
    head = (f"POST {u.path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
            f"authorization: Bearer {os.environ.get('BENCH_KEY', 'sk-bench-client')}\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode()  # fmt: skip
    latencies: list[float] = []
    errors = {"connect": 0, "read": 0, "status": 0}
    received = [0]
    start = time.monotonic()
    end = start + duration

    async def one(index: int) -> None:
        await asyncio.sleep(index * stagger / conns)
        try:
            reader, writer = await asyncio.open_connection(host, port, limit=1 << 22)
        except OSError:
            errors["connect"] += 1
            return
        try:
            while time.monotonic() < end:
                t0 = time.monotonic()
                writer.write(head + body)
                status = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                data = await reader.readexactly(length)
                if time.monotonic() > end:
                    break  # as wrk: what completes after the end is not counted
                latencies.append(time.monotonic() - t0)
                received[0] += len(data)
                if b" 200 " not in status:
                    errors["status"] += 1
        except (OSError, asyncio.IncompleteReadError, ValueError):
            if time.monotonic() < end:
                errors["read"] += 1
        finally:
            writer.close()

    await asyncio.gather(*(one(i) for i in range(conns)))
    latencies.sort()

    def pct(p: float) -> int:
        return (
            int(1e6 * latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))]) if latencies else 0
        )

    mean = sum(latencies) / len(latencies) if latencies else 0.0
    return {"requests": len(latencies), "duration_us": int(1e6 * duration), "bytes": received[0],
            "err_connect": errors["connect"], "err_read": errors["read"], "err_write": 0,
            "err_status": errors["status"], "err_timeout": 0, "p50_us": pct(50), "p90_us": pct(90),
            "p99_us": pct(99), "max_us": int(1e6 * latencies[-1]) if latencies else 0,
            "mean_us": 1e6 * mean, "stdev_us": 0.0}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--conns", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--stagger", type=float, default=1.0)
    args = parser.parse_args()
    runner: Any = asyncio.run
    try:
        import uvloop  # noqa: PLC0415 - optional: cheaper than asyncio's loop

        runner = uvloop.run
    except ImportError:
        pass
    result = runner(run(args.url, args.conns, args.duration, args.stagger))
    print("WRKJSON " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
