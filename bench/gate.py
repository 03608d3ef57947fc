#!/usr/bin/env python3
"""Bifrost's load gate for Asbru, on loopback (stdlib only; started by bench/gate.sh).

A mock upstream that answers every chat request after DELAY_S (``slow_upstream.py``), wrk in a
closed loop with CONNS connections for DURATION seconds, straight to the mock ("direct") and
through the gateway, alternately, REPS times. Per run: RPS, failures, p50/p99, the latency the
gateway adds (its p50/p99 minus direct's in the same rep), the gateway's CPU per request (utime +
stime of its process tree from /proc) and "other CPU" (machine time nobody here used: the
background load of a shared machine). Scenarios (SCENARIOS):

  one-core   gateway ``--workers 1`` pinned to cpu 0; mock and wrk (-t2) on cpu 1; CONNS connections
  two-core   gateway ``--workers 2`` on both cores, mock and wrk unpinned; CONNS2 connections
  sweep      CPU per request against the number of connections (SWEEP_CONNS), one-core layout,
             SWEEP_DURATION each: where the cost per request grows with open connections

Targets (issue 9): 0 failed, added p50 <= 5 ms, added p99 <= 100 ms, >= 950 RPS on one core.

PROBES (optional, one-core and sweep): comma-separated variants of the gateway, each run as a
separate target in the same run, started through ``gateway_probe.py`` (``base`` = unchanged);
e.g. ``PROBES="base,gc-default,gc-off"``. FLOOR=1 adds the raw ASGI + aiohttp floor proxy of the
shared harness (``../shared/bench/proxies/mini_proxy.py``, /tmp/venv-gw) to each scenario on one core.
CLIENT=even replaces wrk by ``evenload.py``: the same closed loop, but the connections start evenly
spread over DELAY_S instead of all at once (see its docstring: wrk's synchronised wave).
Everything it starts is stopped by PID, also on Ctrl-C; every wait is bounded.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import bench as B
from bench import Row

HERE = Path(__file__).resolve().parent
CONNS = int(B.env("CONNS", "1000"))
CONNS2 = int(B.env("CONNS2", "5000"))
DURATION = float(B.env("DURATION", "30"))
DELAY_S = float(B.env("DELAY_S", "1.0"))
REPS = int(B.env("REPS", "1"))
SCENARIOS = B.env("SCENARIOS", "one-core two-core").split()
SWEEP_CONNS = [int(c) for c in B.env("SWEEP_CONNS", "16 64 256 1000").split()]
SWEEP_DURATION = float(B.env("SWEEP_DURATION", "15"))
PROBES = [p for p in B.env("PROBES", "base").split(",") if p]
FLOOR = B.env("FLOOR", "0") == "1"
CLIENT = B.env("CLIENT", "wrk")  # or "even": evenload.py, connections started evenly over DELAY_S
BUDGET_S = float(B.env("BUDGET_S", "900"))
POOL = int(B.env("POOL", "8000"))
PYTHON = B.env("PYTHON", str(B.REPO / ".venv/bin/python"))
FLOOR_VENV = Path(B.env("VENV_GW", "/tmp/venv-gw"))
FLOOR_APP_DIR = B.REPO.parent / "shared/bench/proxies"
WRK_TIMEOUT = "10s"
MODEL = "gate"
UPSTREAM_KEY = {"BENCH_UPSTREAM_KEY": "sk-upstream-gate-0123456789"}


@dataclass
class Server:
    """A target behind wrk: the mock itself (direct), a gateway variant, or the floor proxy."""

    name: str
    url: str
    model: str
    started: B.Started | None = None
    runs: list[Row] = field(default_factory=list)


def gate_config(mock_port: int) -> str:
    return "\n".join(
        [
            "# written by bench/gate.py: one route to the slow mock, a pool that holds every request",
            "providers:",
            "  - name: gate-mock",
            "    type: openai",
            f"    base_url: http://127.0.0.1:{mock_port}/v1",
            "    keys: [{name: k1, secret: 'env:BENCH_UPSTREAM_KEY'}]",
            f"    pool: {{concurrency: {POOL}, queue_size: {POOL}}}",
            "routes:",
            f"  - name: {MODEL}",
            "    targets: [{provider: gate-mock, model: gpt-4o-mini}]",
            "plugins:",
            "  - {name: telemetry, type: telemetry, order: -100}",
            "",
        ]
    )


def start_mock(port: int, cpu: str | None) -> B.Started:
    cmd = [PYTHON, str(HERE / "slow_upstream.py"), "--port", str(port), "--delay", str(DELAY_S)]
    mock = B.start("slow-mock", cmd, cpu)
    B.wait_until("slow mock", lambda: B.http("GET", f"http://127.0.0.1:{port}/health")[0] == 200, mock, 15)
    return mock


def start_gateway(name: str, port: int, config: Path, *, workers: int, cpu: str | None, probe: str) -> Server:
    serve = ["serve", "--config", str(config), "--no-watch", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers), "--log-level", "warning"]  # fmt: skip
    if probe == "base":
        cmd = [B.ASBRU, *serve]
        extra = dict(UPSTREAM_KEY)
    else:
        cmd = [PYTHON, str(HERE / "gateway_probe.py"), *serve]
        out = str(B.OUT_DIR / f"probe-{name}.json")
        extra = {
            **UPSTREAM_KEY,
            "ASBRU_PROBE": probe,
            "ASBRU_PROBE_OUT": out,
            "ASBRU_PROBE_STALL_US": B.env("ASBRU_PROBE_STALL_US", "500"),
        }
    started = B.start(name, cmd, cpu, extra)
    B.wait_until(name, lambda: B.http("GET", f"http://127.0.0.1:{port}/readyz")[0] == 200, started, 60)
    return Server(name, f"http://127.0.0.1:{port}/v1/chat/completions", MODEL, started)


def start_floor(port: int, mock_port: int, cpu: str | None) -> Server | None:
    uvicorn = FLOOR_VENV / "bin/uvicorn"
    if not uvicorn.exists() or not (FLOOR_APP_DIR / "mini_proxy.py").exists():
        B.log(f"floor skipped: {uvicorn} or {FLOOR_APP_DIR}/mini_proxy.py missing (../shared/bench/setup.sh)")
        return None
    cmd = [str(uvicorn), "mini_proxy:app", "--app-dir", str(FLOOR_APP_DIR), "--host", "127.0.0.1",
           "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
           "--log-level", "warning", "--backlog", "4096"]  # fmt: skip
    extra = {"PROXY_FRAMEWORK": "asgi", "PROXY_CLIENT": "aiohttp", "PROXY_POOL": str(POOL),
             "UPSTREAM_URL": f"http://127.0.0.1:{mock_port}"}  # fmt: skip
    started = B.start("floor", cmd, cpu, extra)
    base = f"http://127.0.0.1:{port}"
    B.wait_until("floor", lambda: B.http("GET", f"{base}/health")[0] in (200, 404), started, 30)
    return Server("floor", f"http://127.0.0.1:{port}/v1/chat/completions", "gpt-4o-mini", started)


def check(server: Server) -> None:
    status, _, data = B.http("POST", server.url, {"model": server.model, **B.CHAT}, timeout=DELAY_S + 10)
    if status != 200 or b"chat.completion" not in data:
        raise B.Abort(f"{server.name}: check failed: HTTP {status} {data[:200]!r}")


def run_wrk(server: Server, conns: int, duration: float, cpu: str | None) -> Row:
    """One closed-loop wrk run; CPU of everything this run started, and of the machine, around it."""
    measured = list(B.STARTED)
    threads = 2 if conns >= 100 else 1
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration:g}s", "--timeout", WRK_TIMEOUT,
           "-s", str(HERE / "wrk-chat.lua"), server.url]  # fmt: skip
    if CLIENT == "even":
        cmd = [PYTHON, str(HERE / "evenload.py"), "--url", server.url, "--conns", str(conns),
               "--duration", f"{duration:g}", "--stagger", f"{DELAY_S:g}"]  # fmt: skip
    if cpu is not None:
        cmd = ["taskset", "-c", cpu, *cmd]
    wrk_env = {**os.environ, "BENCH_MODEL": server.model, "BENCH_KEY": B.CLIENT_KEY}
    pids = {s.name: B.tree(s.proc.pid) for s in measured}
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, total0 = B.machine_ticks()
    ticks0 = {name: B.cpu_ticks(p) for name, p in pids.items()}
    w0 = time.monotonic()
    try:
        cp = subprocess.run(
            cmd, env=wrk_env, capture_output=True, text=True, check=False, timeout=duration + 30
        )
    except subprocess.TimeoutExpired:
        return {"error": "wrk did not finish in time"}
    wall = time.monotonic() - w0
    busy1, total1 = B.machine_ticks()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    ticks = {s.name: B.cpu_ticks(B.tree(s.proc.pid)) - ticks0[s.name] for s in measured}
    m = re.search(r"WRKJSON (\{.*\})", cp.stdout)
    if not m:
        return {"error": f"wrk failed rc={cp.returncode}: {(cp.stderr or cp.stdout)[-300:]}"}
    r: Row = json.loads(m.group(1))
    if r["requests"] == 0:
        return {"error": f"no request completed: {m.group(1)[:200]}"}
    wrk_cpu = ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime
    machine = B.NCPU * (busy1 - busy0) / max(1, total1 - total0) * wall  # CPU seconds used by anyone
    ours = sum(ticks.values()) / B.CLK + wrk_cpu
    target = ticks.get(server.name)
    r.update(
        target=server.name,
        conns=conns,
        rps=r["requests"] / (r["duration_us"] / 1e6),
        failed=sum(r[k] for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout")),
        cpu_us_per_req=None if target is None else 1e6 * target / B.CLK / r["requests"],
        cpu_pct=None if target is None else 100.0 * target / B.CLK / wall,
        other_cpu_pct=max(0.0, 100.0 * (machine - ours) / wall),
    )
    return r


def alternate(servers: list[Server], direct: Server, conns: int, *, duration: float, cpu: str | None) -> None:
    """REPS rounds of direct and every server, order rotated each round (drift hits all alike)."""
    order = [direct, *servers]
    for rep in range(REPS):
        for server in order[rep % len(order) :] + order[: rep % len(order)]:
            if time.monotonic() - B.T0 + duration + 10 > BUDGET_S:
                B.log(f"time budget: {server.name} c={conns} skipped")
                continue
            r = run_wrk(server, conns, duration, cpu)
            r.update(rep=rep + 1, target=server.name, conns=conns)
            server.runs.append(r)
            if "error" in r:
                B.log(f"{server.name} c={conns}: ERROR {r['error']}")
            else:
                cpu_text = "" if r["cpu_us_per_req"] is None else f" cpu {r['cpu_us_per_req']:.0f} µs/req"
                B.log(f"{server.name:<10} c={conns:<5} {r['rps']:7,.0f} rps  "
                      f"p50 {r['p50_us'] / 1e3:7.1f} ms  p99 {r['p99_us'] / 1e3:7.1f} ms  "
                      f"failed {r['failed']}{cpu_text}  "
                      f"other cpu {r['other_cpu_pct']:.0f}%")  # fmt: skip


def med(rows: list[Row], key: str) -> float:
    """Median of ``key`` over ``rows`` (NaN if none has it)."""
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(statistics.median(values)) if values else math.nan


def gate_table(
    title: str, direct: Server, servers: list[Server], *, conns: int, min_rps: float | None
) -> list[str]:
    out = [f"### {title}", "",
           "| target | conns | RPS | requests | failed | p50 ms | p99 ms | added p50 ms | added p99 ms "
           "| CPU µs/req | CPU | other CPU | gate |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    d = [r for r in direct.runs if r.get("conns") == conns and "error" not in r]
    if d:
        out.append(f"| direct (mock) | {conns} | {med(d, 'rps'):,.0f} | {sum(r['requests'] for r in d):,} "
                   f"| {sum(r['failed'] for r in d)} | {med(d, 'p50_us') / 1e3:.1f} "
                   f"| {med(d, 'p99_us') / 1e3:.1f} "
                   f"| | | | | {med(d, 'other_cpu_pct'):.0f}% | |")  # fmt: skip
    for server in servers:
        g = [r for r in server.runs if r.get("conns") == conns and "error" not in r]
        if not g:
            continue
        by_rep = {r["rep"]: r for r in d}
        add50 = [r["p50_us"] - by_rep[r["rep"]]["p50_us"] for r in g if r["rep"] in by_rep]
        add99 = [r["p99_us"] - by_rep[r["rep"]]["p99_us"] for r in g if r["rep"] in by_rep]
        a50 = statistics.median(add50) / 1e3 if add50 else None
        a99 = statistics.median(add99) / 1e3 if add99 else None
        failed = sum(r["failed"] for r in g) + sum(1 for r in server.runs if "error" in r)
        rps = med(g, "rps") or 0.0
        ok = failed == 0 and a50 is not None and a50 <= 5 and a99 is not None and a99 <= 100
        ok = ok and (min_rps is None or rps >= min_rps)
        cpu: float | None = med(g, "cpu_us_per_req")
        cpu = None if cpu is None or math.isnan(cpu) else cpu
        out.append(
            f"| {server.name} | {conns} | {rps:,.0f} | {sum(r['requests'] for r in g):,} | {failed} "
            f"| {med(g, 'p50_us') / 1e3:.1f} | {med(g, 'p99_us') / 1e3:.1f} "
            f"| {'–' if a50 is None else f'{a50:+.1f}'} | {'–' if a99 is None else f'{a99:+.1f}'} "
            f"| {'–' if cpu is None else f'{cpu:,.0f}'} | {med(g, 'cpu_pct') or 0:.0f}% "
            f"| {med(g, 'other_cpu_pct'):.0f}% | {'PASS' if ok else 'FAIL'} |"
        )
    return [*out, ""]


def sweep_table(servers: list[Server]) -> list[str]:
    out = ["### CPU per request against open connections (one core, 1 s mock)", "",
           "| target | " + " | ".join(f"c={c}" for c in SWEEP_CONNS) + " |",
           "|---|" + "---:|" * len(SWEEP_CONNS)]  # fmt: skip
    for server in servers:
        cells = []
        for c in SWEEP_CONNS:
            rows = [r for r in server.runs if r.get("conns") == c and "error" not in r]
            cpu, rps = med(rows, "cpu_us_per_req"), med(rows, "rps")
            cells.append("–" if cpu is None or rps is None else f"{cpu:,.0f} µs ({rps:,.0f} rps)")
        out.append(f"| {server.name} | " + " | ".join(cells) + " |")
    note = "Cells: CPU per request (utime + stime of the target's process tree / requests) and RPS."
    return [*out, "", note, ""]


def one_core(config: Path, mock_port: int, sweep: bool) -> list[str]:
    mock = start_mock(mock_port, B.LOAD_CPU)
    direct = Server("direct", f"http://127.0.0.1:{mock_port}/v1/chat/completions", "gpt-4o-mini", mock)
    servers: list[Server] = []
    for probe in PROBES:
        name = "asbru" if probe == "base" else f"asbru[{probe}]"
        port = B.free_port(18480 + len(servers))
        servers.append(start_gateway(name, port, config, workers=1, cpu=B.PROXY_CPU, probe=probe))
    if FLOOR and (floor := start_floor(B.free_port(18470), mock_port, B.PROXY_CPU)):
        servers.append(floor)
    for s in [direct, *servers]:
        check(s)
    for s in servers:  # warm-up: pools, caches, allocator
        run_wrk(s, 64, 3, B.LOAD_CPU)
    lines: list[str] = []
    if "one-core" in SCENARIOS:
        alternate(servers, direct, CONNS, duration=DURATION, cpu=B.LOAD_CPU)
        title = f"One core: gateway on cpu {B.PROXY_CPU}, mock + wrk on cpu {B.LOAD_CPU}, {CONNS} connections"
        lines += gate_table(f"{title}, {DURATION:g} s", direct, servers, conns=CONNS, min_rps=950)
    if sweep:
        for c in SWEEP_CONNS:
            alternate(servers, direct, c, duration=SWEEP_DURATION, cpu=B.LOAD_CPU)
        lines += sweep_table(servers)
    return lines


def two_core(config: Path, mock_port: int) -> list[str]:
    mock = start_mock(mock_port, None)
    direct = Server("direct", f"http://127.0.0.1:{mock_port}/v1/chat/completions", "gpt-4o-mini", mock)
    gateway = start_gateway("asbru-2w", B.free_port(18490), config, workers=2, cpu=None, probe="base")
    check(direct)
    check(gateway)
    run_wrk(gateway, 256, 3, None)
    alternate([gateway], direct, CONNS2, duration=DURATION, cpu=None)
    title = f"Two cores: gateway --workers 2, mock and wrk unpinned, {CONNS2} connections, {DURATION:g} s"
    return gate_table(title, direct, [gateway], conns=CONNS2, min_rps=None)


def header(bg_pct: float) -> list[str]:
    rev = subprocess.run(["git", "-C", str(B.REPO), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, check=False).stdout.strip() or "?"  # fmt: skip
    load = (
        f"wrk closed loop (every connection starts at once), --timeout {WRK_TIMEOUT}"
        if CLIENT == "wrk"
        else f"evenload.py closed loop, connections started evenly over {DELAY_S:g} s"
    )
    return [
        f"## Asbru load gate, {time.strftime('%Y-%m-%d %H:%M')} (commit {rev}, working tree as is)",
        "",
        f"- mock: slow_upstream.py, every answer after {DELAY_S:g} s; {load}; "
        f"{REPS} rep(s), direct and gateway alternated; added = gateway minus direct, same rep",
        f"- machine: {B.NCPU} cpus, busy {bg_pct:.0f}% of {100 * B.NCPU}% in the second before the start; "
        "other CPU = machine time used by no process of this run (background load)",
        "- gate: 0 failed, added p50 <= 5 ms, added p99 <= 100 ms, and on one core >= 950 RPS",
        "",
    ]


def _terminate(signum: int, _frame: object) -> None:
    raise B.Abort(f"signal {signum}")


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    B.OUT_DIR = Path(B.env("OUT_DIR", f"/tmp/asbru-gate/{time.strftime('%Y%m%d-%H%M%S')}"))
    (B.OUT_DIR / "logs").mkdir(parents=True, exist_ok=True)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000) if hard > 0 else 20000, hard))
    b0, t0 = B.machine_ticks()
    time.sleep(1)
    b1, t1 = B.machine_ticks()
    lines = header(100.0 * B.NCPU * (b1 - b0) / max(1, t1 - t0))
    config = B.OUT_DIR / "gate.yaml"
    mock_port = B.free_port(int(B.env("MOCK_PORT", "18990")))
    config.write_text(gate_config(mock_port))
    failed = False
    try:
        if "one-core" in SCENARIOS or "sweep" in SCENARIOS:
            lines += one_core(config, mock_port, "sweep" in SCENARIOS)
            B.stop_all()
        if "two-core" in SCENARIOS:
            lines += two_core(config, mock_port)
    except (B.Abort, KeyboardInterrupt) as error:
        B.log(f"aborted: {error or 'interrupted'}")
        lines.append(f"**partial: aborted ({error or 'interrupted'})**")
        failed = True
    finally:
        B.stop_all()
    table = "\n".join(lines) + "\n"
    (B.OUT_DIR / "table.md").write_text(table)
    print(table)
    for probe_file in sorted(B.OUT_DIR.glob("probe-*.json")):
        print(f"{probe_file.name}: {probe_file.read_text().strip()}")
    B.log(f"results in {B.OUT_DIR} (table.md, logs/)")
    return 1 if failed or "FAIL" in table else 0


if __name__ == "__main__":
    sys.exit(main())
