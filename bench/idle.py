#!/usr/bin/env python3
"""What an idle gateway costs, and what wakes it (issue 9 §1: "a gateway with nothing to do uses ~0 CPU").

For each state below, IDLE_S seconds with no request:
  - wake-ups per second of each thread (voluntary + involuntary context switches, /proc/PID/task);
  - what woke it: the gateway traced with ``strace -f`` for the same time, its waits (epoll_wait,
    futex, poll, nanosleep ...) counted per thread and grouped by the timeout they were given,
    which names the timer behind each wake-up (100 ms: uvicorn's main loop tick; 1 s: the
    connection guard; 50 ms: watchfiles' stop-event poll, ...);
  - with CALLGRIND=1, instructions per second (a second gateway process under callgrind).

States: ``fresh`` (--no-watch, nothing served yet), ``watching`` (the config file watched, as
``asbru serve --config`` does by default), ``after-traffic`` (after some requests: idle upstream
connections in aiohttp's pool), ``client-open`` (one idle keep-alive client connection).

  bench/idle.py         env: IDLE_S=10 CALLGRIND=1 OUT_DIR ASBRU PYTHON MOCK_PORT GATEWAY_PORT
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import bench as B
import instr_dialects as I
from bench import Row

IDLE_S = float(B.env("IDLE_S", "10"))
CALLGRIND = B.env("CALLGRIND", "1") == "1"
STATES = ("fresh", "watching", "after-traffic", "client-open")
WAIT = re.compile(r"^(?P<call>epoll_wait|epoll_pwait|futex|poll|ppoll|select|pselect6|clock_nanosleep|"
                  r"nanosleep)"
                  r"\((?P<args>.*)\)\s+=")  # fmt: skip


def switches(pid: int) -> dict[int, int]:
    """Context switches (voluntary + involuntary) per thread of ``pid``."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            text = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except OSError:
            continue
        out[int(tid)] = sum(int(v) for v in re.findall(r"_ctxt_switches:\s+(\d+)", text))
    return out


def thread_names(pid: int) -> dict[int, str]:
    names = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            names[int(tid)] = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
    return names


def timeout_of(call: str, args: str) -> str:
    """The wait's timeout, as strace printed it (epoll_wait's 4th argument, a timespec, ...)."""
    if call in ("epoll_wait", "epoll_pwait"):
        fields = [f.strip() for f in re.sub(r"\[.*?\]", "[]", args).split(",")]
        return f"{fields[3]} ms" if len(fields) > 3 else "?"
    m = re.search(r"tv_sec=(\d+), tv_nsec=(\d+)", args)
    if m:
        return f"{int(m.group(1)) * 1000 + int(m.group(2)) // 1_000_000} ms"
    return "none" if call == "futex" else "?"


def trace(pid: int, seconds: float, out: Path) -> dict[tuple[int, str, str], int]:
    """strace every thread of the process for ``seconds``: (thread, wait call, timeout) -> count.
    One file per thread (``-ff``), so that no wait is split into unfinished/resumed halves."""
    cmd = ["strace", "-ff", "-qq", "-e", "trace=epoll_wait,epoll_pwait,futex,poll,ppoll,select,pselect6,"
           "clock_nanosleep,nanosleep", "-o", str(out), "-p", str(pid)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(seconds)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    counts: collections.Counter[tuple[int, str, str]] = collections.Counter()
    for path in out.parent.glob(f"{out.name}.*"):
        tid = int(path.suffix[1:])
        for line in path.read_text(errors="replace").splitlines():
            m = WAIT.match(line)
            if m:
                counts[(tid, m.group("call"), timeout_of(m.group("call"), m.group("args")))] += 1
    return dict(counts)


def observe(state: str, pid: int) -> Row:
    names = thread_names(pid)
    s0, t0 = switches(pid), time.monotonic()
    cpu0 = B.cpu_ticks([pid])
    time.sleep(IDLE_S)
    s1, wall = switches(pid), time.monotonic() - t0
    cpu = (B.cpu_ticks([pid]) - cpu0) / B.CLK
    per_thread = {tid: (s1.get(tid, 0) - s0.get(tid, 0)) / wall for tid in s1}
    waits = trace(pid, IDLE_S, B.OUT_DIR / f"strace-{state}.txt")
    B.log(f"{state}: {sum(per_thread.values()):.1f} wake-ups/s, CPU {1000 * cpu / wall:.2f} ms/s")
    return {"state": state, "names": names, "wakeups": per_thread, "cpu_ms_per_s": 1000 * cpu / wall,
            "waits": waits, "trace_s": IDLE_S}  # fmt: skip


def idle_client(port: int) -> socket.socket:
    """One keep-alive client connection that has been answered once and then stays idle."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
    s.recv(4096)
    return s


def start(config: Path, port: int, *, watch: bool, callgrind: bool) -> B.Started:
    flags = [] if watch else ["--no-watch"]
    serve = [B.ASBRU, "serve", "--config", str(config), *flags, "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning"]  # fmt: skip
    if callgrind:
        out = f"--callgrind-out-file={B.OUT_DIR}/cg.%p"
        serve = ["valgrind", "--tool=callgrind", "--instr-atstart=no", out,
                 "--dump-line=no", *serve]  # fmt: skip
    started = B.start(f"gateway{'-cg' if callgrind else ''}{'-watch' if watch else ''}", serve, None,
                      {"BENCH_UPSTREAM_KEY": "sk-upstream-bench-0123456789"})  # fmt: skip
    ready = lambda: B.http("GET", f"http://127.0.0.1:{port}/readyz", timeout=20)[0] == 200  # noqa: E731
    B.wait_until(started.name, ready, started, 240 if callgrind else 60)
    return started


def run_states(config: Path, port: int, *, callgrind: bool) -> list[Row]:
    """Every state in order, in two gateway processes (without and with the file watcher)."""
    rows: list[Row] = []
    cg_rates: dict[str, float] = {}
    openai = next(c for c in I.cases() if c.name == "openai-json")
    for watch in (False, True):
        gw = start(config, port, watch=watch, callgrind=callgrind)
        cg = I.Callgrind(gw, B.OUT_DIR)
        states = ["watching", "after-traffic", "client-open"] if watch else ["fresh"]
        client = None
        for state in states:
            if state == "after-traffic":
                I.send(port, openai, 20)
                time.sleep(1)
            if state == "client-open":
                client = idle_client(port)
            if callgrind:
                ir, wall = cg.count(state, lambda: time.sleep(IDLE_S))
                cg_rates[state] = ir / wall
                B.log(f"{state}: {ir / wall / 1e3:,.0f} k instructions/s")
            else:
                rows.append(observe(state, gw.proc.pid))
        if client is not None:
            client.close()
        B.stop(gw)
    for row in rows:
        row["ir_per_s"] = cg_rates.get(row["state"])
    return rows if not callgrind else [{"state": s, "ir_per_s": r} for s, r in cg_rates.items()]


def report(rows: list[Row], cg: list[Row]) -> str:
    rates = {r["state"]: r["ir_per_s"] for r in cg}
    out = [f"## Idle gateway, {time.strftime('%Y-%m-%d %H:%M')}: {IDLE_S:g} s per state", "",
           "| state | wake-ups / s (all threads) | CPU ms / s | k instr. / s (callgrind) "
           "| waits seen (strace: "
           "thread, call, timeout: per second) |",
           "|---|---:|---:|---:|---|"]  # fmt: skip
    for r in rows:
        waits = sorted(r["waits"].items(), key=lambda kv: -kv[1])
        tid_names = r["names"]
        seen = "; ".join(f"{tid_names.get(tid, tid)} {call} {timeout}: {n / r['trace_s']:.1f}"
                         for (tid, call, timeout), n in waits[:5])  # fmt: skip
        ir = rates.get(r["state"])
        out.append(f"| {r['state']} | {sum(r['wakeups'].values()):.1f} | {r['cpu_ms_per_s']:.2f} "
                   f"| {'–' if ir is None else f'{ir / 1e3:,.0f}'} | {seen} |")  # fmt: skip
    return "\n".join(out) + "\n"


def main() -> int:
    B.OUT_DIR = B.begin("idle")
    mock_port = B.free_port(int(B.env("MOCK_PORT", "18280")))
    port = B.free_port(int(B.env("GATEWAY_PORT", "18590")))
    # Its own directory: the watcher watches the config's directory, where strace's output must not be.
    config = B.OUT_DIR / "config" / "gateway.yaml"
    config.parent.mkdir(exist_ok=True)
    config.write_text(I.gateway_config(mock_port))
    rows: list[Row] = []
    cg: list[Row] = []
    try:
        B.start_mock(mock_port)
        rows = run_states(config, port, callgrind=False)
        if CALLGRIND:
            cg = run_states(config, port, callgrind=True)
    except (B.Abort, KeyboardInterrupt) as error:
        B.log(f"aborted: {error or 'interrupted'}")
    finally:
        B.stop_all()
    text = report(rows, cg)
    (B.OUT_DIR / "table.md").write_text(text)
    print(text)
    B.log(f"results in {B.OUT_DIR} (strace-*.txt: the raw traces)")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
