#!/usr/bin/env python3
"""A bounded soak: minutes of mixed load, the gateway's memory and file descriptors sampled over time.

Load, all at once for SOAK_S seconds (issue 9 §4: "RSS flat, no file descriptor growth"):
  - wrk JSON (nginx mock), wrk SSE (nginx mock), wrk on a route whose upstream answers 500 and one
    whose upstream answers 429 (retries, then errors to the client);
  - DISCONNECTERS client threads that leave early: mid-stream (a slow stream, the socket closed after
    the first bytes), before the answer (a 0.5 s upstream, closed after 0.1 s), and invalid bodies.
Every SAMPLE_S: the gateway's RSS (VmRSS), open file descriptors, and its TCP sockets split into
client side (local port = the gateway's) and upstream side. After the load stops and SETTLE_S pass,
once more: client sockets must be back to 0 and RSS/fds near where they were after the warm-up.

  bench/soak.py      env: SOAK_S=180 SAMPLE_S=10 SETTLE_S=5 DISCONNECTERS=2 JSON_CONNS=8 SSE_CONNS=4
                     ERROR_CONNS=2 PIN=1 PROXY_CPU LOAD_CPU OUT_DIR ASBRU PYTHON

Flat means: RSS in the last quarter of the run within 5% (+2 MiB) of the second quarter's median
(the first quarter is warm-up: allocator arenas, pools and caches fill), and the fd count after the
settle within 2 of the count after the warm-up settle. Bounded: the load has a fixed duration,
every wait a timeout; everything started is stopped by PID.
"""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import bench as B
import gate as G
from bench import Row

HERE = Path(__file__).resolve().parent
SOAK_S = float(B.env("SOAK_S", "180"))
SAMPLE_S = float(B.env("SAMPLE_S", "10"))
SETTLE_S = float(B.env("SETTLE_S", "5"))
DISCONNECTERS = int(B.env("DISCONNECTERS", "2"))
LOADS = {  # model -> connections (wrk -t1 each)
    "gpt-4o-mini": int(B.env("JSON_CONNS", "8")),
    "gpt-4o-mini-stream": int(B.env("SSE_CONNS", "4")),
    "failing": int(B.env("ERROR_CONNS", "2")),
    "limited": int(B.env("ERROR_CONNS", "2")),
}


def config(nginx_port: int, slow_port: int) -> str:
    providers = [("mock", f"{nginx_port}/v1"), ("mock-stream", f"{nginx_port}/stream/v1"),
                 ("slow", f"{slow_port}/v1"), ("slow-stream", f"{slow_port}/stream/v1"),
                 ("failing", f"{slow_port}/error/v1"), ("limited", f"{slow_port}/ratelimit/v1")]  # fmt: skip
    lines = ["# written by bench/soak.py", "providers:"]
    for name, where in providers:
        lines += [f"  - name: {name}", "    type: openai", f"    base_url: http://127.0.0.1:{where}",
                  "    keys: [{name: k1, secret: 'env:BENCH_UPSTREAM_KEY'}]",
                  "    network: {max_retries: 1, backoff_initial_s: 0.01, backoff_max_s: 0.05}"]  # fmt: skip
    lines.append("routes:")
    routes = [("gpt-4o-mini", "mock"), ("gpt-4o-mini-stream", "mock-stream"), ("slow", "slow"),
              ("slow-stream", "slow-stream"), ("failing", "failing"), ("limited", "limited")]  # fmt: skip
    for route, provider in routes:
        lines.append(f"  - {{name: {route}, targets: [{{provider: {provider}, model: gpt-4o-mini}}]}}")
    lines += ["plugins:", "  - {name: telemetry, type: telemetry, order: -100}", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- sampling
def sockets_by_inode() -> dict[str, tuple[int, int]]:
    """inode -> (local port, remote port) of every IPv4 TCP socket on the machine."""
    out: dict[str, tuple[int, int]] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        out[f[9]] = (int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16))
    return out


def sample(pid: int, gw_port: int) -> Row:
    pids = B.tree(pid)
    rss_kb, fds, client, upstream = 0, 0, 0, 0
    inodes = sockets_by_inode()
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss_kb += int(line.split()[1])
            links = [os.readlink(f"/proc/{p}/fd/{fd}") for fd in os.listdir(f"/proc/{p}/fd")]
        except OSError:
            continue
        fds += len(links)
        for link in links:
            m = re.fullmatch(r"socket:\[(\d+)\]", link)
            ports = inodes.get(m.group(1)) if m else None
            if ports is None:
                continue
            if ports[0] == gw_port and ports[1] != 0:
                client += 1
            elif ports[1] != 0:
                upstream += 1
    return {
        "t": time.monotonic(),
        "rss_mib": rss_kb / 1024,
        "fds": fds,
        "client": client,
        "upstream": upstream,
    }


# --------------------------------------------------------------------------- clients that leave
def leave_early(port: int, stop: threading.Event, counts: dict[str, int]) -> None:
    """Requests whose client goes away: mid-stream, before the answer, and invalid bodies."""
    bodies = [
        ("mid-stream", {"model": "slow-stream", **B.CHAT, "stream": True}, "first"),
        ("before-answer", {"model": "slow", **B.CHAT}, 0.1),
        ("invalid", None, "answer"),
    ]
    i = 0
    while not stop.is_set():
        kind, body, when = bodies[i % len(bodies)]
        i += 1
        data = b'{"model": "gpt-4o-mini", "messages": 7' if body is None else json.dumps(body).encode()
        head = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                f"content-type: application/json\r\nauthorization: Bearer {B.CLIENT_KEY}\r\n"
                f"content-length: {len(data)}\r\n\r\n").encode()  # fmt: skip
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(head + data)
                if isinstance(when, float):
                    time.sleep(when)
                else:
                    s.recv(4096)  # first bytes (stream) or the whole small error answer
            counts[kind] = counts.get(kind, 0) + 1
        except OSError:
            counts["error"] = counts.get("error", 0) + 1
        time.sleep(0.02)


# --------------------------------------------------------------------------- run
def wrk(url: str, model: str, conns: int, duration: float) -> subprocess.Popen[str]:
    cmd = [
        "wrk",
        "-t1",
        f"-c{conns}",
        f"-d{duration:g}s",
        "--timeout",
        "10s",
        "-s",
        str(HERE / "wrk-chat.lua"),
        url,
    ]
    if B.PIN:
        cmd = ["taskset", "-c", B.LOAD_CPU, *cmd]
    wrk_env = {**os.environ, "BENCH_MODEL": model, "BENCH_KEY": B.CLIENT_KEY,
               "BENCH_STREAM": "1" if "stream" in model else "0"}  # fmt: skip
    return subprocess.Popen(cmd, env=wrk_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def soak(pid: int, port: int, url: str) -> tuple[list[Row], Row, Row, Row]:
    """Run the load, sampling; then settle and sample once more. (samples, before, after, loads)"""
    time.sleep(SETTLE_S)
    before = sample(pid, port)
    B.log(f"after warm-up, idle: RSS {before['rss_mib']:.1f} MiB, {before['fds']} fds")
    procs = {model: wrk(url, model, conns, SOAK_S) for model, conns in LOADS.items() if conns > 0}
    stop, counts = threading.Event(), dict[str, int]()
    threads = [threading.Thread(target=leave_early, args=(port, stop, counts), daemon=True)
               for _ in range(DISCONNECTERS)]  # fmt: skip
    for t in threads:
        t.start()
    samples, t0 = [], time.monotonic()
    try:
        while time.monotonic() - t0 < SOAK_S:
            time.sleep(min(SAMPLE_S, max(0.0, SOAK_S - (time.monotonic() - t0))))
            s = sample(pid, port)
            s["t"] -= t0
            samples.append(s)
            B.log(f"t={s['t']:5.0f}s RSS {s['rss_mib']:.1f} MiB, {s['fds']} fds "
                  f"({s['client']} client / {s['upstream']} upstream sockets)")  # fmt: skip
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
    loads: Row = {"leave_early": counts}
    for model, proc in procs.items():
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate(timeout=10)
        m = re.search(r"WRKJSON (\{.*\})", out or "")
        loads[model] = json.loads(m.group(1)) if m else {"error": (out or "")[-200:]}
    time.sleep(SETTLE_S)
    after = sample(pid, port)
    B.log(
        f"after the load, idle: RSS {after['rss_mib']:.1f} MiB, {after['fds']} fds, "
        f"{after['client']} client sockets"
    )
    return samples, before, after, loads


def report(samples: list[Row], before: Row, after: Row, loads: Row, bg_pct: float) -> str:
    lines = [
        f"## Soak, {time.strftime('%Y-%m-%d %H:%M')}: {SOAK_S:g} s of mixed load",
        "",
        f"- gateway: 1 worker{f', pinned to cpu {B.PROXY_CPU}' if B.PIN else ''}; machine busy {bg_pct:.0f}% "
        f"of {100 * B.NCPU}% before the start",
    ]
    for model, r in loads.items():
        if model == "leave_early":
            lines.append(f"- clients that left early ({DISCONNECTERS} threads): {r}")
        elif "error" in r:
            lines.append(f"- wrk {model}: {r['error']}")
        else:
            errs = sum(r[k] for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))
            lines.append(
                f"- wrk {model} (c={LOADS[model]}): {r['requests']:,} requests, {errs:,} non-2xx/errors"
            )
    lines += [
        "",
        "| t (s) | RSS MiB | open fds | client sockets | upstream sockets |",
        "|---:|---:|---:|---:|---:|",
    ]

    def row(label: str, s: Row) -> str:
        return f"| {label} | {s['rss_mib']:.1f} | {s['fds']} | {s['client']} | {s['upstream']} |"

    lines += [
        row("idle, before", before),
        *(row(f"{s['t']:.0f}", s) for s in samples),
        row("idle, after", after),
    ]
    quarter = max(1, len(samples) // 4)
    if len(samples) >= 4:
        second = statistics.median(s["rss_mib"] for s in samples[quarter : 2 * quarter])
        last = statistics.median(s["rss_mib"] for s in samples[-quarter:])
        rss_ok = last <= second * 1.05 + 2
        fds_ok = abs(after["fds"] - before["fds"]) <= 2 and after["client"] == 0
        lines += [
            "",
            f"RSS: second-quarter median {second:.1f} MiB, last-quarter median {last:.1f} MiB: "
            f"**{'flat' if rss_ok else 'GROWING'}**. File descriptors idle before/after: {before['fds']} / "
            f"{after['fds']}, client sockets after: {after['client']}: "
            f"**{'flat' if fds_ok else 'GROWING'}**.",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    B.OUT_DIR = B.begin("soak")
    bg_pct = B.background_percent()
    nginx_port = B.free_port(int(B.env("MOCK_PORT", "18780")))
    slow_port = B.free_port(nginx_port + 1)
    gw_port = B.free_port(int(B.env("GATEWAY_PORT", "18790")))
    cfg = B.OUT_DIR / "gateway.yaml"
    cfg.write_text(config(nginx_port, slow_port))
    text = ""
    try:
        B.start_mock(nginx_port)
        cmd = [G.PYTHON, str(HERE / "slow_upstream.py"), "--port", str(slow_port), "--delay", "0.5",
               "--events", "20", "--interval", "0.05"]  # fmt: skip
        mock = B.start("slow-mock", cmd, B.LOAD_CPU)
        B.wait_until(
            "slow mock", lambda: B.http("GET", f"http://127.0.0.1:{slow_port}/health")[0] == 200, mock, 15
        )
        gateway = G.start_gateway("gateway", gw_port, cfg, workers=1, cpu=B.PROXY_CPU, probe="base")
        G.check(G.Server("gateway", gateway.url, "gpt-4o-mini", gateway.started))
        assert gateway.started is not None
        for model, conns in LOADS.items():  # warm-up: every path once under load
            wrk(gateway.url, model, conns, 3).communicate(timeout=30)
        samples, before, after, loads = soak(gateway.started.proc.pid, gw_port, gateway.url)
        text = report(samples, before, after, loads, bg_pct)
    except (B.Abort, KeyboardInterrupt) as error:
        B.log(f"aborted: {error or 'interrupted'}")
    finally:
        B.stop_all()
    (B.OUT_DIR / "table.md").write_text(text)
    print(text)
    B.log(f"results in {B.OUT_DIR}")
    return 0 if text and "GROWING" not in text else 1


if __name__ == "__main__":
    sys.exit(main())
