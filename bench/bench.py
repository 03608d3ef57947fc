#!/usr/bin/env python3
"""Asbru gateway benchmark on loopback (stdlib only; started by bench/run.sh).

What it does, bounded in time (BUDGET_S; run.sh adds a hard limit on top):
  1. starts the mock upstream: nginx, one worker, canned JSON and SSE (mock-upstream.conf),
     pinned to LOAD_CPU;
  2. starts the gateway (``asbru serve``, GATEWAY_WORKERS workers) pinned to PROXY_CPU, with
     routes to the mock and to a slow SSE mock (sse_check.py);
  3. checks a JSON and an SSE answer through the gateway, then checks that SSE is forwarded as
     it arrives (sse_check.py: events 100 ms apart must reach the client one by one);
  4. loads "direct" (wrk -> nginx) and "gateway" (wrk -> gateway -> nginx) alternately with
     wrk -t1 pinned to LOAD_CPU: JSON at JSON_CONNS, SSE at STREAM_CONNS, REPS times (median),
     reading around each run the CPU time of the gateway's process tree, nginx, wrk and the
     whole machine from /proc;
  5. stops everything it started, by PID (also on Ctrl-C / SIGTERM), and prints a markdown table
     (also written to OUT_DIR/table.md, raw runs to OUT_DIR/results.jsonl).

"Added latency" is the gateway's p50 (p99) minus direct's at the same load: what putting the
gateway between client and provider costs. Why pinning: on 2 cores the load generator, the mock
and the gateway always share the machine; pinning the gateway alone on one core makes its
throughput the single-core figure and keeps wrk and nginx from stealing its cycles.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
Row = dict[str, Any]
"""One measured run, as wrk's summary plus what was read around it."""
REPO = HERE.parent
CLK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
T0 = time.monotonic()


def env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


DURATION = float(env("DURATION", "8"))  # seconds per wrk run
REPS = int(env("REPS", "3"))
JSON_CONNS = [int(c) for c in env("JSON_CONNS", "1 16 64").split()]
STREAM_CONNS = [int(c) for c in env("STREAM_CONNS", "1 16").split()]
WARMUP = float(env("WARMUP", "2"))
BUDGET_S = float(env("BUDGET_S", "330"))
PIN = env("PIN", "1") == "1"
PROXY_CPU = env("PROXY_CPU", "0")
LOAD_CPU = env("LOAD_CPU", "1")
WORKERS = int(env("GATEWAY_WORKERS", "1"))
ASBRU = env("ASBRU", str(REPO / ".venv/bin/asbru"))
SSE_CHUNKS = int(env("SSE_CHUNKS", "10"))
SSE_INTERVAL = float(env("SSE_INTERVAL", "0.1"))
OUT_DIR = Path(env("OUT_DIR", f"/tmp/asbru-bench/{time.strftime('%Y%m%d-%H%M%S')}"))
CLIENT_KEY = env("BENCH_KEY", "sk-bench-0123456789abcdef")
WRK_TIMEOUT = "5s"
JSON_MODEL, STREAM_MODEL, SLOW_MODEL = "gpt-4o-mini", "gpt-4o-mini-stream", "slow-stream"
CHAT = {
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Say hello in one short sentence."},
    ],
    "max_tokens": 32,
    "temperature": 0,
}


class Abort(Exception):
    """Stop the run: what was measured so far is still reported."""


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- /proc
def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields from #3 (state) on; comm may hold spaces


def tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (uvicorn workers, nginx workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))):
            children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if _stat(p) is not None:
            out.append(p)
            todo.extend(children.get(p, []))
    return out


def cpu_ticks(pids: list[int]) -> int:
    """utime + stime (fields 14, 15) summed over ``pids``, in clock ticks."""
    return sum(int(f[11]) + int(f[12]) for p in pids if (f := _stat(p)))


def hwm_kb(pids: list[int]) -> int:
    """Peak resident set (VmHWM) summed over ``pids``."""
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all cpus."""
    values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return sum(values) - values[3] - values[4], sum(values)


def _abort(signum: int, _frame: object) -> None:
    raise Abort(f"signal {signum}")


def begin(kind: str, *, signals: tuple[int, ...] = (signal.SIGTERM,)) -> Path:
    """A benchmark's start: a signal stops it like Ctrl-C (``Abort``: what it started is stopped by
    PID). Returns its results directory, for ``OUT_DIR`` (default ``/tmp/asbru-<kind>/<time>``)."""
    for number in signals:
        signal.signal(number, _abort)
    out = Path(env("OUT_DIR", f"/tmp/asbru-{kind}/{time.strftime('%Y%m%d-%H%M%S')}"))
    (out / "logs").mkdir(parents=True, exist_ok=True)
    return out


def background_percent() -> float:
    """How busy the machine was over the second before the start (100% = one core)."""
    busy0, total0 = machine_ticks()
    time.sleep(1)
    busy1, total1 = machine_ticks()
    return 100.0 * NCPU * (busy1 - busy0) / max(1, total1 - total0)


def free_port(preferred: int) -> int:
    for port in [preferred, *range(preferred + 1, preferred + 200)]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            found: int = port
            return found
    raise Abort(f"no free port near {preferred}")


# --------------------------------------------------------------------------- processes
@dataclass
class Started:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path


STARTED: list[Started] = []


def start(name: str, cmd: list[str], cpu: str | None, extra_env: dict[str, str] | None = None) -> Started:
    if PIN and cpu is not None:
        cmd = ["taskset", "-c", cpu, *cmd]
    log_path = OUT_DIR / "logs" / f"{name}.log"
    with open(log_path, "wb") as fh:
        # Own session: a Ctrl-C in the terminal reaches bench.py only, which then stops these
        # in order (gateway first, so it does not log a burst of upstream errors).
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(extra_env or {})}, start_new_session=True)  # fmt: skip
    started = Started(name, proc, log_path)
    STARTED.append(started)
    return started


def stop(s: Started) -> None:
    """SIGTERM one started process tree by PID, SIGKILL what is left of it after 10 s."""
    pids = tree(s.proc.pid) if s.proc.poll() is None else []
    if s in STARTED:
        STARTED.remove(s)
    if not pids:
        return
    s.proc.send_signal(signal.SIGTERM)
    try:
        s.proc.wait(10)
    except subprocess.TimeoutExpired:
        log(f"{s.name} did not stop in 10 s: SIGKILL")
    for pid in pids:  # leftovers of the tree (workers whose parent was killed)
        if _stat(pid) is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    s.proc.poll()
    log(f"stopped {s.name} (pid {s.proc.pid})")


def stop_all() -> None:
    """Stop every started process tree, newest first (see ``stop``)."""
    for s in reversed(list(STARTED)):
        stop(s)
    STARTED.clear()


def http(method: str, url: str, body: Row | None = None, timeout: float = 5) -> tuple[int, str, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"content-type": "application/json", "authorization": f"Bearer {CLIENT_KEY}"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:  # noqa: S310 - loopback only
            return r.status, r.headers.get("content-type", ""), r.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("content-type", ""), error.read()


def wait_until(what: str, ready: Callable[[], bool], proc: Started, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise Abort(f"{what} exited with code {proc.proc.returncode}; see {proc.log_path}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise Abort(f"{what} not ready after {timeout:.0f} s; see {proc.log_path}")


def big_chat(size: int) -> bytes:
    """A chat.completion whose content makes the body about ``size`` bytes (usage at its tail)."""
    words = ("lorem ipsum dolor sit amet " * (size // 27 + 1))[: max(0, size - 260)]
    return json.dumps(
        {
            "id": "chatcmpl-big",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": words}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": size // 4, "total_tokens": size // 4 + 5},
        }
    ).encode()


# --------------------------------------------------------------------------- setup
def start_mock(port: int) -> Started:
    prefix = OUT_DIR / "nginx"
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    (prefix / "tmp").mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text((HERE / "mock-upstream.conf").read_text().replace("127.0.0.1:18080", f"127.0.0.1:{port}"))
    mock = start("nginx", ["nginx", "-p", f"{prefix}/", "-c", str(conf), "-g", "daemon off;"], LOAD_CPU)
    wait_until("nginx mock", lambda: http("GET", f"http://127.0.0.1:{port}/health")[0] == 200, mock, 10)
    return mock


def gateway_config(mock_port: int, slow_port: int) -> str:
    """The bench config: JSON and SSE routes to nginx, one SSE route to the slow mock."""
    lines = ["# written by bench/bench.py", "providers:"]
    for name, base in (("mock", f"http://127.0.0.1:{mock_port}/v1"),
                       ("mock-stream", f"http://127.0.0.1:{mock_port}/stream/v1"),
                       ("slow", f"http://127.0.0.1:{slow_port}/v1")):  # fmt: skip
        lines += [
            f"  - name: {name}",
            "    type: openai",
            f"    base_url: {base}",
            "    keys: [{name: k1, secret: 'env:BENCH_UPSTREAM_KEY'}]",
            "    pool: {concurrency: 256, queue_size: 1024}",
        ]
    lines.append("routes:")
    for route, provider in ((JSON_MODEL, "mock"), (STREAM_MODEL, "mock-stream"), (SLOW_MODEL, "slow")):
        lines += [f"  - name: {route}", f"    targets: [{{provider: {provider}, model: gpt-4o-mini}}]"]
    lines += ["plugins:", "  - {name: telemetry, type: telemetry, order: -100}", ""]
    return "\n".join(lines)


def start_gateway(port: int, mock_port: int, slow_port: int) -> Started:
    config = OUT_DIR / "gateway.yaml"
    config.write_text(gateway_config(mock_port, slow_port))
    cmd = [ASBRU, "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(WORKERS), "--log-level", "warning"]  # fmt: skip
    gateway = start("gateway", cmd, PROXY_CPU, {"BENCH_UPSTREAM_KEY": "sk-upstream-bench-0123456789"})
    wait_until("gateway", lambda: http("GET", f"http://127.0.0.1:{port}/readyz")[0] == 200, gateway, 60)
    return gateway


def check_answers(base: str, json_url: str, stream_url: str) -> None:
    """Before any load: the target must answer a chat request and a stream correctly."""
    status, _, data = http("POST", json_url, {"model": JSON_MODEL, **CHAT})
    if status != 200 or b"fixed mock completion" not in data:
        raise Abort(f"{base}: JSON check failed: HTTP {status} {data[:200]!r}")
    status, ctype, data = http("POST", stream_url, {"model": STREAM_MODEL, **CHAT, "stream": True})
    events = [ln[5:].strip() for ln in data.decode(errors="replace").splitlines() if ln.startswith("data:")]
    if status != 200 or "text/event-stream" not in ctype or not events or events[-1] != "[DONE]":
        raise Abort(f"{base}: SSE check failed: HTTP {status} {ctype} {data[:200]!r}")


def sse_forwarding(gateway_base: str, slow_port: int) -> Row:
    """Run sse_check.py (slow mock + client) against the gateway; its SSECHECK JSON line."""
    cmd = [sys.executable, str(HERE / "sse_check.py"), "--port", str(slow_port), "--gateway", gateway_base,
           "--model", SLOW_MODEL, "--chunks", str(SSE_CHUNKS), "--interval", str(SSE_INTERVAL)]  # fmt: skip
    try:
        limit = SSE_CHUNKS * SSE_INTERVAL * 2 + 40
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        return {"ok": False, "problem": "sse_check.py did not finish in time"}
    (OUT_DIR / "logs" / "sse_check.log").write_text(cp.stdout + cp.stderr)
    m = re.search(r"SSECHECK (\{.*\})", cp.stdout)
    if not m:
        return {"ok": False, "problem": f"sse_check.py failed: {(cp.stderr or cp.stdout)[-300:]}"}
    result: Row = json.loads(m.group(1))
    return result


# --------------------------------------------------------------------------- load
@dataclass
class Target:
    name: str
    json_url: str
    stream_url: str
    pid: int | None = None  # process tree measured (gateway); None for direct
    hwm_kb: int = 0
    runs: list[Row] = field(default_factory=list)


def run_wrk(t: Target, stream: bool, conns: int, duration: float, nginx_pid: int) -> Row:
    url = t.stream_url if stream else t.json_url
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{duration:g}s", "--timeout", WRK_TIMEOUT,
           "-s", str(HERE / "wrk-chat.lua"), url]  # fmt: skip
    if PIN:
        cmd = ["taskset", "-c", LOAD_CPU, *cmd]
    wrk_env = {**os.environ, "BENCH_MODEL": STREAM_MODEL if stream else JSON_MODEL,
               "BENCH_STREAM": "1" if stream else "0", "BENCH_KEY": CLIENT_KEY}  # fmt: skip
    gw_pids = tree(t.pid) if t.pid else []
    ng_pids = tree(nginx_pid)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, total0 = machine_ticks()
    g0, n0, w0 = cpu_ticks(gw_pids), cpu_ticks(ng_pids), time.monotonic()
    try:
        cp = subprocess.run(
            cmd, env=wrk_env, capture_output=True, text=True, check=False, timeout=duration + 9
        )
    except subprocess.TimeoutExpired:
        return {"error": "wrk did not finish in time"}
    wall = time.monotonic() - w0
    busy1, total1 = machine_ticks()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    g1, n1 = cpu_ticks(tree(t.pid) if t.pid else []), cpu_ticks(ng_pids)
    m = re.search(r"WRKJSON (\{.*\})", cp.stdout)
    if not m:
        return {"error": f"wrk failed rc={cp.returncode}: {(cp.stderr or cp.stdout)[-300:]}"}
    r = json.loads(m.group(1))
    if r["requests"] == 0:
        return {"error": f"no request completed: {m.group(1)[:200]}"}
    errors = sum(r[k] for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))
    gw_pct = 100.0 * (g1 - g0) / CLK / wall
    ng_pct = 100.0 * (n1 - n0) / CLK / wall
    wrk_pct = 100.0 * (ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime) / wall
    sys_pct = 100.0 * NCPU * (busy1 - busy0) / max(1, total1 - total0)
    r.update(
        rps=r["requests"] / (r["duration_us"] / 1e6),
        errors=errors,
        gw_cpu_pct=gw_pct if t.pid else None,
        gw_us_per_req=1e6 * (g1 - g0) / CLK / r["requests"] if t.pid else None,
        other_cpu_pct=max(0.0, sys_pct - (gw_pct if t.pid else 0.0) - ng_pct - wrk_pct),
    )
    if t.pid:
        t.hwm_kb = max(t.hwm_kb, hwm_kb(tree(t.pid)))
    result: Row = r
    return result


# --------------------------------------------------------------------------- report
def ms(us: float | None) -> str:
    if us is None:
        return "–"
    return f"{us / 1000:.3f}" if us < 1000 else f"{us / 1000:.2f}"


def med(rows: list[Row], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def report(direct: Target, gateway: Target, sse: Row, header: list[str]) -> str:
    def rows(t: Target, mode: str, c: int) -> list[Row]:
        return [r for r in t.runs if r["mode"] == mode and r["conns"] == c and "error" not in r]

    out = [*header, "",
           "| load | gateway RPS (min–max) | p50 ms | p99 ms | added p50 | added p99 | direct RPS "
           "| direct p50 ms | gateway CPU µs/req | gateway CPU | errors | other CPU |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    loads = [("json", c) for c in JSON_CONNS] + [("sse", c) for c in STREAM_CONNS]
    for mode, c in loads:
        g, d = rows(gateway, mode, c), rows(direct, mode, c)
        if not g:
            continue
        rps = [r["rps"] for r in g]
        gp50, gp99, dp50, dp99 = med(g, "p50_us"), med(g, "p99_us"), med(d, "p50_us"), med(d, "p99_us")
        add50 = f"{gp50 - dp50:+,.0f} µs" if gp50 is not None and dp50 is not None else "–"
        add99 = f"{gp99 - dp99:+,.0f} µs" if gp99 is not None and dp99 is not None else "–"
        drps = med(d, "rps")
        out.append(
            f"| {mode} c={c} | {statistics.median(rps):,.0f} ({min(rps):,.0f}–{max(rps):,.0f}) | {ms(gp50)} "
            f"| {ms(gp99)} | {add50} | {add99} | {f'{drps:,.0f}' if drps else '–'} | {ms(dp50)} "
            f"| {med(g, 'gw_us_per_req') or 0:,.0f} | {med(g, 'gw_cpu_pct') or 0:.0f}% "
            f"| {sum(r['errors'] for r in g)} | {med(g, 'other_cpu_pct') or 0:.0f}% |"
        )
    out += ["", f"- peak RSS of the gateway process tree (VmHWM): **{gateway.hwm_kb / 1024:,.1f} MiB**"]
    if "gateway" in sse and "error" not in sse["gateway"]:
        g, d = sse["gateway"], sse["direct"]
        out.append(
            f"- SSE forwarding ({sse['chunks']} events, {sse['interval_ms']:.0f} ms apart, slow mock): "
            f"**{'PASS' if sse['ok'] else 'FAIL'}**; first event at {g['first_ms']:.1f} ms "
            f"(mock sent the 2nd at {g['second_sent_ms']:.0f} ms, the last at {g['last_sent_ms']:.0f} ms), "
            f"last at {g['last_ms']:.0f} ms; per-event hold p50 {g['delay_p50_ms']:.2f} ms, "
            f"max {g['delay_max_ms']:.2f} ms (direct: first {d['first_ms']:.1f} ms, max hold "
            f"{d['delay_max_ms']:.2f} ms); {g['events']} events in {g['reads']} reads"
            + (f"; problem: {sse['problem']}" if sse.get("problem") else "")
        )
    else:
        out.append(f"- SSE forwarding: **FAIL**: {sse.get('problem') or sse}")
    return "\n".join(out) + "\n"


def header_lines(bg_pct: float, skipped: int) -> list[str]:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "?")  # fmt: skip
    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, check=False).stdout.strip() or "?"  # fmt: skip
    pinning = (
        f"pinned to cpu {PROXY_CPU}; wrk -t1 + nginx (1 worker) on cpu {LOAD_CPU}" if PIN else "unpinned"
    )
    lines = [
        f"## Asbru gateway benchmark, {time.strftime('%Y-%m-%d %H:%M')} (commit {rev}, working tree as is)",
        "",
        f"- host: {NCPU} cpus ({cpu}), Linux {platform.release()}, Python {platform.python_version()}; "
        f"machine busy before start: {bg_pct:.0f}% of {100 * NCPU}%",
        f"- gateway: `asbru serve`, {WORKERS} worker(s), {pinning}",
        f"- each load {DURATION:g} s, {REPS} reps, median, direct and gateway alternated; "
        "added = gateway minus direct (wrk -> nginx mock) at the same load; latency is to the last byte",
        "- CPU from /proc/PID/stat of the gateway's process tree; other CPU = machine busy time not used by "
        "the gateway, nginx or wrk (other processes: should be ~0, else numbers are noisy)",
    ]
    if bg_pct > 30:
        lines.append(f"- **warning: the machine was {bg_pct:.0f}% busy before the start: numbers are noisy**")
    if skipped < 0:
        lines.append("- **partial: interrupted (Ctrl-C, SIGTERM or a failed start)**")
    elif skipped:
        lines.append(f"- **partial: {skipped} runs skipped (time budget)**")
    return lines


# --------------------------------------------------------------------------- main
def _terminate(signum: int, _frame: object) -> None:
    raise Abort(f"signal {signum}")


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    (OUT_DIR / "logs").mkdir(parents=True, exist_ok=True)
    if not Path(ASBRU).exists():
        log(f"gateway command {ASBRU} not found (set ASBRU=...)")
        return 2
    b0, t0 = machine_ticks()
    time.sleep(1)
    b1, t1 = machine_ticks()
    bg_pct = 100.0 * NCPU * (b1 - b0) / max(1, t1 - t0)
    mock_port = free_port(int(env("MOCK_PORT", "18180")))
    slow_port = free_port(mock_port + 1)
    gw_port = free_port(int(env("GATEWAY_PORT", "18380")))
    mock_base, gw_base = f"http://127.0.0.1:{mock_port}", f"http://127.0.0.1:{gw_port}"
    direct = Target("direct", f"{mock_base}/v1/chat/completions", f"{mock_base}/stream/v1/chat/completions")
    gateway = Target("gateway", f"{gw_base}/v1/chat/completions", f"{gw_base}/v1/chat/completions")
    sse: Row = {"ok": False, "problem": "not run"}
    skipped, failed = 0, False
    try:
        nginx = start_mock(mock_port)
        log(f"nginx mock at {mock_base} (pid {nginx.proc.pid})")
        gw = start_gateway(gw_port, mock_port, slow_port)
        gateway.pid = gw.proc.pid
        log(f"gateway at {gw_base} (pid {gw.proc.pid}, log {gw.log_path})")
        check_answers("direct", direct.json_url, direct.stream_url)
        check_answers("gateway", gateway.json_url, gateway.stream_url)
        sse = sse_forwarding(gw_base, slow_port)
        log(f"SSE forwarding: {'PASS' if sse.get('ok') else 'FAIL ' + str(sse.get('problem'))}")
        for t in (direct, gateway):  # warm-up (JIT-free Python still fills caches, pools, allocator)
            run_wrk(t, False, 16, WARMUP, nginx.proc.pid)
            run_wrk(t, True, 16, 1, nginx.proc.pid)
        loads = [(False, c) for c in JSON_CONNS] + [(True, c) for c in STREAM_CONNS]
        plan = [(rep, t, stream, c) for rep in range(REPS) for stream, c in loads
                for t in ((direct, gateway) if rep % 2 == 0 else (gateway, direct))]  # fmt: skip
        left = BUDGET_S - (time.monotonic() - T0)
        log(f"{len(plan)} runs of {DURATION:g} s planned; budget left {left:.0f} s")
        for i, (rep, t, stream, c) in enumerate(plan):
            if time.monotonic() - T0 + DURATION + 5 > BUDGET_S:
                skipped = len(plan) - i
                break
            r = run_wrk(t, stream, c, DURATION, nginx.proc.pid)
            r.update(target=t.name, mode="sse" if stream else "json", conns=c, rep=rep + 1)
            t.runs.append(r)
            if "error" in r:
                failed = True
                log(f"run {i + 1}/{len(plan)} {t.name} {r['mode']} c={c}: ERROR {r['error']}")
            else:
                log(f"run {i + 1}/{len(plan)} {t.name:<7} {r['mode']} c={c:<3} {r['rps']:8,.0f} rps  "
                    f"p50 {ms(r['p50_us'])} ms  p99 {ms(r['p99_us'])} ms  errors {r['errors']}  "
                    f"other cpu {r['other_cpu_pct']:.0f}%")  # fmt: skip
    except (Abort, KeyboardInterrupt) as error:
        log(f"aborted: {error or 'interrupted'}")
        failed = True
        skipped = skipped or -1
    finally:
        if gateway.pid:
            gateway.hwm_kb = max(gateway.hwm_kb, hwm_kb(tree(gateway.pid)))
        stop_all()
    with open(OUT_DIR / "results.jsonl", "w") as fh:
        for r in direct.runs + gateway.runs:
            fh.write(json.dumps(r) + "\n")
        fh.write(json.dumps({"sse_check": sse}) + "\n")
    table = report(direct, gateway, sse, header_lines(bg_pct, skipped))
    (OUT_DIR / "table.md").write_text(table)
    print(table)
    log(f"results in {OUT_DIR} (table.md, results.jsonl, logs/)")
    return 1 if failed or not sse.get("ok") else 0


if __name__ == "__main__":
    sys.exit(main())
