#!/usr/bin/env python3
"""Instructions per request of same-dialect pass-through, per client dialect (issue 6 §5; stdlib only).

OpenAI chat to an ``openai`` provider, Anthropic Messages (``/anthropic/v1/messages``) to an
``anthropic`` provider and Gemini (``/genai/v1beta/models/M:generateContent`` and
``:streamGenerateContent?alt=sse``) to a ``gemini`` provider, each JSON and SSE, against the nginx
mock (``mock-upstream.conf``), which answers each in its provider's documented wire format with
canned bodies of similar size and the same text. Target: Anthropic and Gemini <= 1.1x OpenAI.

  bench/instr_dialects.py            (or: CASES="openai-json anthropic-json" bench/instr_dialects.py)
  env: N=300 WARM=30 IDLE_S=10 CASES=... OUT_DIR=/tmp/asbru-instr/<time> ASBRU MOCK_PORT GATEWAY_PORT
       PROFILE=1: instead of callgrind, a deterministic Python profile (cProfile, through
       gateway_probe.py) of N requests per case: calls per request and the top functions, to say
       *where* a dialect's extra cost is.

The method is ``../shared/bench/instr.py``'s: the gateway runs under callgrind with instrumentation
off; after WARM requests it is switched on, N requests are sent one at a time on one keep-alive
connection, the counters are dumped and divided by N; an idle pass (IDLE_S seconds, no request)
gives the instructions per second the gateway burns on its own, subtracted pro rata. User-space
instructions only: no kernel, no cache misses; independent of the machine's load. Bounded: every
wait has a timeout; everything started is stopped by PID.
"""

from __future__ import annotations

import http.client
import json
import os
import pstats
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import bench as B
from bench import Row

HERE = Path(__file__).resolve().parent
N = int(B.env("N", "300"))
WARM = int(B.env("WARM", "30"))
IDLE_S = float(B.env("IDLE_S", "10"))
PROFILE = B.env("PROFILE", "0") == "1"
PYTHON = B.env("PYTHON", str(B.REPO / ".venv/bin/python"))
SYSTEM, USER = "You are a helpful assistant.", "Say hello in one short sentence."


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    body: Row
    headers: dict[str, str]
    expect: bytes


def cases() -> list[Case]:
    oai = {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}],
           "max_tokens": 32, "temperature": 0}  # fmt: skip
    anth = {
        "max_tokens": 32,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": USER}],
        "temperature": 0,
    }
    gem = {"systemInstruction": {"parts": [{"text": SYSTEM}]},
           "contents": [{"role": "user", "parts": [{"text": USER}]}],
           "generationConfig": {"maxOutputTokens": 32, "temperature": 0}}  # fmt: skip
    bearer = {"authorization": f"Bearer {B.CLIENT_KEY}"}
    anth_h = {"x-api-key": B.CLIENT_KEY, "anthropic-version": "2023-06-01"}
    goog = {"x-goog-api-key": B.CLIENT_KEY}
    models = "/genai/v1beta/models/gemini-bench"
    return [
        Case(
            "openai-json",
            "/v1/chat/completions",
            {"model": "gpt-4o-mini", **oai},
            bearer,
            b'"chat.completion"',
        ),
        Case(
            "openai-sse",
            "/v1/chat/completions",
            {"model": "gpt-4o-mini-stream", **oai, "stream": True},
            bearer,
            b"data: [DONE]",
        ),
        Case(
            "anthropic-json",
            "/anthropic/v1/messages",
            {"model": "claude-bench", **anth},
            anth_h,
            b'"message"',
        ),
        Case(
            "anthropic-sse",
            "/anthropic/v1/messages",
            {"model": "claude-bench-stream", **anth, "stream": True},
            anth_h,
            b"message_stop",
        ),
        Case("gemini-json", f"{models}:generateContent", gem, goog, b'"candidates"'),
        Case("gemini-sse", f"{models}:streamGenerateContent?alt=sse", gem, goog, b'"finishReason":"STOP"'),
    ]


def gateway_config(mock_port: int) -> str:
    base = f"http://127.0.0.1:{mock_port}"
    providers = [("mock", "openai", "/v1"), ("mock-stream", "openai", "/stream-usage/v1"),
                 ("anth", "anthropic", "/anthropic/v1"), ("anth-stream", "anthropic", "/anthropic-stream/v1"),
                 ("gem", "gemini", "/gemini/v1beta")]  # fmt: skip
    routes = [("gpt-4o-mini", "mock", "gpt-4o-mini"), ("gpt-4o-mini-stream", "mock-stream", "gpt-4o-mini"),
              ("claude-bench", "anth", "claude-bench-20250514"),
              ("claude-bench-stream", "anth-stream", "claude-bench-20250514"),
              ("gemini-bench", "gem", "gemini-bench-001")]  # fmt: skip
    lines = ["# written by bench/instr_dialects.py", "providers:"]
    for name, kind, path in providers:
        lines += [f"  - name: {name}", f"    type: {kind}", f"    base_url: {base}{path}",
                  "    keys: [{name: k1, secret: 'env:BENCH_UPSTREAM_KEY'}]"]  # fmt: skip
    lines.append("routes:")
    for route, provider, model in routes:
        lines += [f"  - name: {route}", f"    targets: [{{provider: {provider}, model: {model}}}]"]
    lines += ["plugins:", "  - {name: telemetry, type: telemetry, order: -100}", ""]
    return "\n".join(lines)


def send(port: int, case: Case, n: int, timeout: float = 120) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    body = json.dumps(case.body).encode()
    headers = {"content-type": "application/json", **case.headers}
    try:
        for _ in range(n):
            conn.request("POST", case.path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            if r.status != 200 or case.expect not in data:
                raise B.Abort(f"{case.name}: HTTP {r.status}: {data[:300]!r}")
    finally:
        conn.close()


class Callgrind:
    """The gateway under valgrind's callgrind, instrumentation toggled by callgrind_control."""

    def __init__(self, started: B.Started, out: Path) -> None:
        self.started, self.pid, self.out = started, started.proc.pid, out

    def ctl(self, *args: str) -> None:
        subprocess.run(
            ["callgrind_control", *args, str(self.pid)], capture_output=True, timeout=120, check=False
        )

    def count(self, label: str, work: object) -> tuple[int, float]:
        """Instructions and wall seconds of ``work()`` (a callable), dumps kept as cg.PID.N.label."""
        self.ctl("-z")
        self.ctl("-i", "on")
        t0 = time.monotonic()
        work()  # type: ignore[operator]
        wall = time.monotonic() - t0
        self.ctl("-d", label)
        self.ctl("-i", "off")
        time.sleep(0.3)
        files = sorted(
            f for f in self.out.glob(f"cg.{self.pid}.*") if re.fullmatch(rf"cg\.{self.pid}\.\d+", f.name)
        )
        total = 0
        for f in files:
            for line in f.read_text(errors="replace").splitlines():
                m = re.match(r"^(?:totals|summary):\s+(\d+)", line)
                if m:
                    total += int(m.group(1))
                    break
            f.rename(f.with_name(f"{f.name}.{label}"))
        return total, wall


def start_gateway(config: Path, port: int, *, callgrind: bool, probe_out: Path | None = None) -> B.Started:
    serve = ["serve", "--config", str(config), "--no-watch", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning"]  # fmt: skip
    extra = {"BENCH_UPSTREAM_KEY": "sk-upstream-bench-0123456789"}
    if callgrind:
        cmd = ["valgrind", "--tool=callgrind", "--trace-children=yes", "--instr-atstart=no",
               f"--callgrind-out-file={B.OUT_DIR}/cg.%p", "--dump-line=no", "--compress-strings=no",
               B.ASBRU, *serve]  # fmt: skip
    else:
        cmd = [PYTHON, str(HERE / "gateway_probe.py"), *serve]
        extra.update(ASBRU_PROBE="cprofile", ASBRU_PROBE_OUT=str(probe_out))
    started = B.start("gateway", cmd, None, extra)
    ready = lambda: B.http("GET", f"http://127.0.0.1:{port}/readyz", timeout=20)[0] == 200  # noqa: E731
    B.wait_until("gateway", ready, started, 240 if callgrind else 60)
    return started


def measure_instructions(config: Path, port: int, todo: list[Case]) -> list[Row]:
    started = start_gateway(config, port, callgrind=True)
    cg = Callgrind(started, B.OUT_DIR)
    rows: list[Row] = []
    for case in todo:
        send(port, case, WARM)
        cg.count(f"{case.name}-settle", lambda case=case: send(port, case, 3))
        ir, wall = cg.count(case.name, lambda case=case: send(port, case, N, 600))
        rows.append({"case": case.name, "ir": ir, "wall_s": wall, "n": N})
        B.log(f"{case.name}: {ir / N / 1e3:,.0f} k instructions/request (raw)")
    idle_ir, idle_wall = cg.count("idle", lambda: time.sleep(IDLE_S))
    idle_rate = idle_ir / idle_wall
    B.log(f"idle: {idle_rate / 1e3:,.0f} k instructions/s")
    for row in rows:
        row["ir_per_req"] = max(0.0, row["ir"] - idle_rate * row["wall_s"]) / row["n"]
        row["idle_ir_per_s"] = idle_rate
    return rows


def measure_profile(config: Path, port: int, todo: list[Case]) -> list[Row]:
    rows = []
    for case in todo:
        out = B.OUT_DIR / f"profile-{case.name}.prof"
        started = start_gateway(config, port, callgrind=False, probe_out=out)
        send(port, case, WARM)
        os.kill(started.proc.pid, signal.SIGUSR1)  # profiler on
        time.sleep(0.2)
        send(port, case, N)
        os.kill(started.proc.pid, signal.SIGUSR1)  # profiler off, stats written
        deadline = time.monotonic() + 20
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        B.stop(started)
        stats = pstats.Stats(str(out))
        calls = sum(v[1] for v in stats.stats.values())  # type: ignore[attr-defined]
        rows.append({"case": case.name, "calls_per_req": calls / N, "prof": str(out)})
        top = B.OUT_DIR / f"profile-{case.name}.txt"
        with open(top, "w") as fh:
            pstats.Stats(str(out), stream=fh).sort_stats("tottime").print_stats(40)
        B.log(f"{case.name}: {calls / N:,.0f} Python calls/request; top functions in {top}")
    return rows


def table(rows: list[Row]) -> str:
    by = {r["case"]: r for r in rows}
    if PROFILE:
        out = ["| case | Python calls / request | vs OpenAI |", "|---|---:|---:|"]
        for r in rows:
            ref = by.get("openai-" + r["case"].split("-")[1])
            times = f"{r['calls_per_req'] / ref['calls_per_req']:.2f}x" if ref else "–"
            out.append(f"| {r['case']} | {r['calls_per_req']:,.0f} | {times} |")
        return "\n".join(out) + "\n"
    out = ["| dialect (same-dialect pass-through) | k instr. / JSON request | vs OpenAI "
           "| k instr. / SSE request | vs OpenAI |", "|---|---:|---:|---:|---:|"]  # fmt: skip
    for dialect in ("openai", "anthropic", "gemini"):
        cells = []
        for mode in ("json", "sse"):
            found, ref = by.get(f"{dialect}-{mode}"), by.get(f"openai-{mode}")
            if found is None:
                cells += ["–", "–"]
                continue
            ratio = found["ir_per_req"] / ref["ir_per_req"] if ref else None
            flag = "" if ratio is None or ratio <= 1.1 else " **over 1.1x**"
            cells += [f"{found['ir_per_req'] / 1e3:,.0f}", "–" if ratio is None else f"{ratio:.2f}x{flag}"]
        out.append(f"| {dialect} | " + " | ".join(cells) + " |")
    idle = next((r["idle_ir_per_s"] for r in rows), None)
    if idle is not None:
        out += ["", f"Idle gateway: {idle / 1e3:,.0f} k instructions per second (subtracted pro rata above)."]
    return "\n".join(out) + "\n"


def main() -> int:
    signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(B.Abort(f"signal {s}")))
    B.OUT_DIR = Path(B.env("OUT_DIR", f"/tmp/asbru-instr/{time.strftime('%Y%m%d-%H%M%S')}"))
    (B.OUT_DIR / "logs").mkdir(parents=True, exist_ok=True)
    wanted = B.env("CASES", "").split()
    todo = [c for c in cases() if not wanted or c.name in wanted]
    mock_port = B.free_port(int(B.env("MOCK_PORT", "18280")))
    port = B.free_port(int(B.env("GATEWAY_PORT", "18580")))
    config = B.OUT_DIR / "gateway.yaml"
    config.write_text(gateway_config(mock_port))
    rows: list[Row] = []
    try:
        B.start_mock(mock_port)
        rows = measure_profile(config, port, todo) if PROFILE else measure_instructions(config, port, todo)
    except (B.Abort, KeyboardInterrupt) as error:
        B.log(f"aborted: {error or 'interrupted'}")
    finally:
        B.stop_all()
    (B.OUT_DIR / "instr.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = table(rows)
    (B.OUT_DIR / "table.md").write_text(text)
    print(text)
    B.log(f"results in {B.OUT_DIR}")
    return 0 if rows and len(rows) == len(todo) else 1


if __name__ == "__main__":
    sys.exit(main())
