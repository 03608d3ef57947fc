"""What governance adds to a request: CPU per request and Redis round trips, in process.

    python bench/governance_cost.py [N]                    # CPU time, every mode, N=20000
    python bench/governance_cost.py N MODE                 # one mode (for callgrind, below)

Modes: ``off`` (no governance), ``memory`` (a virtual key with one rate limit and one budget,
in-process counters), ``redis`` (the same on a redis-server this script starts on loopback).
The ASGI app is called directly with a canned upstream answer (no sockets but Redis's), so the
numbers are the gateway's own work per request. Redis round trips are counted by Redis itself
(``INFO commandstats``), split into before the response (reserve) and after it (settle).

Instructions (callgrind; independent of machine noise): run a mode at two N and divide the
difference, e.g.
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p python bench/governance_cost.py 2000 redis
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

import uvloop

import inprocess
from asbru_gateway.app import AppSettings, create_app
from asbru_gateway.config.loader import parse_config

KEY = "vk-bench-0123456789abcdef"


def config(mode: str, redis_url: str | None) -> dict[str, Any]:
    base = inprocess.mock_config()
    if mode != "off":
        base["governance"] = {
            "require_virtual_key": True,
            "virtual_keys": [
                {
                    "name": "bench",
                    "secret": "env:BENCH_VK",
                    "rate_limits": {"requests_per_minute": 1_000_000_000},
                    "budgets": [{"period": "day", "tokens": 1_000_000_000_000}],
                }
            ],
        }
        if mode == "redis":
            base["governance"]["redis"] = {"url": redis_url}
    return base


async def run(mode: str, n: int, redis_url: str | None) -> float:
    """CPU seconds per request over ``n`` requests (after 500 warm-up requests)."""
    app = create_app(AppSettings(), config=parse_config(config(mode, redis_url)))
    await app.startup()
    headers = [(b"authorization", f"Bearer {KEY}".encode())]
    spent = await inprocess.cpu_per_request(app, body=inprocess.chat_body(), n=n, headers=headers)
    await app.shutdown()
    return spent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redis_calls(port: int) -> dict[str, int]:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"INFO commandstats\r\n")
        data = b""
        while not data.endswith(b"\r\n\r\n") and b"cmdstat" not in data[-200:]:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if data.count(b"\r\n") > 3 and data.endswith(b"\r\n"):
                break
    calls = {}
    for line in data.decode().splitlines():
        if line.startswith("cmdstat_"):
            name, _, rest = line.partition(":")
            calls[name.removeprefix("cmdstat_")] = int(rest.split(",")[0].removeprefix("calls="))
    return calls


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    modes = sys.argv[2:] or ["off", "memory", "redis"]
    os.environ["BENCH_UPSTREAM_KEY"] = "sk-bench-upstream-0123456789"
    os.environ["BENCH_VK"] = KEY
    server = shutil.which("redis-server")
    port = _free_port()
    workdir = tempfile.mkdtemp()
    redis = None
    if "redis" in modes:
        assert server, "redis-server is not installed"
        redis = subprocess.Popen(
            [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                _redis_calls(port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    try:
        for mode in modes:
            before = _redis_calls(port) if mode == "redis" else {}
            per_request = uvloop.run(run(mode, n, f"redis://127.0.0.1:{port}/0"))
            line = f"{mode:7} {per_request * 1e6:8.1f} us CPU/request"
            if mode == "redis":
                after = _redis_calls(port)
                calls = {k: after.get(k, 0) - before.get(k, 0) for k in after}
                evalsha = calls.get("evalsha", 0) / (n + 500)
                line += (
                    f"   Redis EVALSHA per request: {evalsha:.2f} (reserve before the answer, settle after)"
                )
            print(line, flush=True)
    finally:
        if redis is not None:
            redis.kill()
            redis.wait(10)


if __name__ == "__main__":
    main()
