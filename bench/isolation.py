#!/usr/bin/env python3
"""CPU isolation between providers on one gateway core (issue 9 §1; stdlib only, loopback only).

One provider ("big") answers ~1 MB chat.completion bodies (``bench.big_chat``, a file the nginx
mock sends with sendfile, cheaply); another ("small", the same nginx) answers the usual ~400 B one.
The small provider's latency is measured with wrk -c1 (closed loop, one request at a time) alone
("unloaded"), then while BIG_CONNS connections keep the big provider busy ("loaded"), alternately,
REPS times. In each phase the same mock is then measured direct, under the same load: the load
core (nginx and both wrk share it) is busier in the loaded phase too, and that share is not the
gateway's. The gateway runs pinned to PROXY_CPU, nginx and wrk on LOAD_CPU. Target: loaded p99
<= 2x unloaded p99.

  bench/isolation.py          env: DURATION=10 REPS=3 BIG_CONNS=4 BIG_BYTES=1048576 BUDGET_S=300
                              PROBE OUT_DIR PROXY_CPU LOAD_CPU ASBRU PYTHON MOCK_PORT GATEWAY_PORT

What it shows: whether one provider's large answers (parsed, re-serialised, or passed through)
hold the event loop long enough to delay every other request on the same core.
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import bench as B
import gate as G
from bench import Row

HERE = Path(__file__).resolve().parent
DURATION = float(B.env("DURATION", "10"))
REPS = int(B.env("REPS", "3"))
BIG_CONNS = int(B.env("BIG_CONNS", "4"))
BIG_BYTES = int(B.env("BIG_BYTES", str(1024 * 1024)))
BUDGET_S = float(B.env("BUDGET_S", "300"))
PROBE = B.env("PROBE", "base")  # gateway_probe.py probes, e.g. stalls


def config(nginx_port: int) -> str:
    return "\n".join(
        [
            "# written by bench/isolation.py",
            "providers:",
            "  - name: big",
            "    type: openai",
            f"    base_url: http://127.0.0.1:{nginx_port}/files/big/v1",
            "    keys: [{name: k1, secret: 'env:BENCH_UPSTREAM_KEY'}]",
            "  - name: small",
            "    type: openai",
            f"    base_url: http://127.0.0.1:{nginx_port}/v1",
            "    keys: [{name: k1, secret: 'env:BENCH_UPSTREAM_KEY'}]",
            "routes:",
            "  - {name: big-model, targets: [{provider: big, model: gpt-4o-mini}]}",
            "  - {name: small-model, targets: [{provider: small, model: gpt-4o-mini}]}",
            "plugins:",
            "  - {name: telemetry, type: telemetry, order: -100}",
            "",
        ]
    )


def big_load(url: str, duration: float) -> subprocess.Popen[str]:
    """wrk keeping BIG_CONNS requests for the big model in flight, in the background."""
    cmd = ["taskset", "-c", B.LOAD_CPU, "wrk", "-t1", f"-c{BIG_CONNS}", f"-d{duration:g}s",
           "--timeout", "10s", "-s", str(HERE / "wrk-chat.lua"), url]  # fmt: skip
    wrk_env = {**os.environ, "BENCH_MODEL": "big-model", "BENCH_KEY": B.CLIENT_KEY}
    return subprocess.Popen(cmd, env=wrk_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def big_result(proc: subprocess.Popen[str], timeout: float) -> Row:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)
        return {"error": "big-load wrk did not finish"}
    m = re.search(r"WRKJSON (\{.*\})", out or "")
    if not m:
        return {"error": f"big-load wrk failed: {(out or '')[-200:]}"}
    r: Row = json.loads(m.group(1))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["mb_s"] = r["bytes"] / (r["duration_us"] / 1e6) / 1e6
    return r


def measure(small: G.Server, direct: G.Server, url: str) -> list[Row]:
    """Per phase: the small provider through the gateway, then the same mock direct (same load)."""
    runs: list[Row] = []
    for rep in range(REPS):
        for phase in ("unloaded", "loaded") if rep % 2 == 0 else ("loaded", "unloaded"):
            if time.monotonic() - B.T0 + 2 * DURATION + 20 > BUDGET_S:
                B.log(f"time budget: {phase} rep {rep + 1} skipped")
                continue
            background = big_load(url, 2 * DURATION + 3) if phase == "loaded" else None
            if background is not None:
                time.sleep(1)  # the big load is running before the measurement starts
            r = G.run_wrk(small, 1, DURATION, B.LOAD_CPU)
            r.update(phase=phase, rep=rep + 1)
            alone = G.run_wrk(direct, 1, DURATION, B.LOAD_CPU)
            r.update(direct_p50_us=alone.get("p50_us"), direct_p99_us=alone.get("p99_us"))
            if background is not None:
                r["big"] = big_result(background, 2 * DURATION + 30)
            runs.append(r)
            big = r.get("big", {})
            big_text = f"; big {big.get('rps', 0):,.1f} rps {big.get('mb_s', 0):,.0f} MB/s" if big else ""
            B.log(f"{phase:<8} rep {rep + 1}: small p50 {r.get('p50_us', 0) / 1e3:.2f} ms "
                  f"p99 {r.get('p99_us', 0) / 1e3:.2f} ms {r.get('rps', 0):,.0f} rps; "
                  f"direct p99 {(alone.get('p99_us') or 0) / 1e3:.2f} ms{big_text}")  # fmt: skip
    return runs


def memory_of(pid: int) -> dict[str, float]:
    """The gateway's resident memory now and at its peak (VmRSS, VmHWM), in MiB."""
    values: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                values[line.split(":")[0]] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return values


def report(runs: list[Row], bg_pct: float) -> str:
    def rows(phase: str) -> list[Row]:
        return [r for r in runs if r.get("phase") == phase and "error" not in r]

    def med(values: list[float]) -> float:
        return float(statistics.median(values)) if values else math.nan

    lines = [
        f"## CPU isolation, {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        f"- gateway pinned to cpu {B.PROXY_CPU}; nginx (both providers) and wrk "
        f"on cpu {B.LOAD_CPU}; "
        f"machine busy {bg_pct:.0f}% of {100 * B.NCPU}% before the start",
        f"- small: wrk -c1 for {DURATION:g} s per phase; big: {BIG_CONNS} connections in a closed loop, "
        f"{BIG_BYTES / 1e6:.2f} MB bodies; {REPS} reps, phases alternated, medians",
        "",
        "| phase | small p50 ms | small p99 ms | small RPS | direct p50 ms | direct p99 ms "
        "| big RPS | big MB/s | gateway CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    p99: dict[str, float] = {}
    added: dict[str, float] = {}
    for phase in ("unloaded", "loaded"):
        rs = rows(phase)
        if not rs:
            continue
        big = [r["big"] for r in rs if "big" in r and "error" not in r["big"]]
        p99[phase] = med([r["p99_us"] for r in rs])
        direct_p99 = med([r["direct_p99_us"] for r in rs if r.get("direct_p99_us")])
        added[phase] = p99[phase] - direct_p99
        big_rps = med([b["rps"] for b in big])
        big_mb = med([b["mb_s"] for b in big])
        lines.append(
            f"| {phase} | {med([r['p50_us'] for r in rs]) / 1e3:.2f} | {p99[phase] / 1e3:.2f} "
            f"| {med([r['rps'] for r in rs]):,.0f} "
            f"| {med([r['direct_p50_us'] for r in rs if r.get('direct_p50_us')]) / 1e3:.2f} "
            f"| {direct_p99 / 1e3:.2f} | {'–' if math.isnan(big_rps) else f'{big_rps:,.1f}'} "
            f"| {'–' if math.isnan(big_mb) else f'{big_mb:,.0f}'} | {med([r['cpu_pct'] for r in rs]):.0f}% |"
        )
    if "loaded" in p99 and "unloaded" in p99:
        ratio = p99["loaded"] / p99["unloaded"]
        verdict = "PASS" if ratio <= 2 else "FAIL"
        lines += ["", f"Loaded p99 / unloaded p99: **{ratio:.1f}x** (target <= 2x): {verdict}"]
        lines += [f"The gateway's share (small p99 minus direct p99 in the same phase): "
                  f"{added['unloaded'] / 1e3:.2f} ms unloaded, {added['loaded'] / 1e3:.2f} ms loaded "
                  f"({added['loaded'] / added['unloaded']:.1f}x); the rest is the load core, busy with "
                  f"nginx and both wrk"]  # fmt: skip
    memory = next((r["gateway_memory_mib"] for r in runs if "gateway_memory_mib" in r), None)
    if memory:
        lines += [f"Gateway resident memory after the phases: {memory.get('VmRSS', 0):.0f} MiB "
                  f"(peak {memory.get('VmHWM', 0):.0f} MiB)"]  # fmt: skip
    errors = [r.get("error") or r.get("big", {}).get("error") for r in runs]
    errors = [e for e in errors if e]
    if errors:
        lines += ["", f"Errors: {errors[:3]}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    B.OUT_DIR = B.begin("isolation")
    bg_pct = B.background_percent()
    nginx_port = B.free_port(int(B.env("MOCK_PORT", "18680")))
    gw_port = B.free_port(int(B.env("GATEWAY_PORT", "18690")))
    cfg = B.OUT_DIR / "gateway.yaml"
    cfg.write_text(config(nginx_port))
    big_file = B.OUT_DIR / "nginx" / "files" / "big" / "v1" / "chat" / "completions"
    big_file.parent.mkdir(parents=True, exist_ok=True)
    big_file.write_bytes(B.big_chat(BIG_BYTES))
    runs: list[Row] = []
    try:
        B.start_mock(nginx_port)
        gateway = G.start_gateway("gateway", gw_port, cfg, workers=1, cpu=B.PROXY_CPU, probe=PROBE)
        url = gateway.url
        small = G.Server("gateway", url, "small-model", gateway.started)
        direct = G.Server("direct", f"http://127.0.0.1:{nginx_port}/v1/chat/completions", "gpt-4o-mini")
        G.check(small)
        status, _, data = B.http("POST", url, {"model": "big-model", **B.CHAT}, timeout=30)
        if status != 200 or len(data) < BIG_BYTES // 2:
            raise B.Abort(f"big check failed: HTTP {status}, {len(data)} bytes")
        G.run_wrk(small, 4, 2, B.LOAD_CPU)  # warm-up
        big_result(big_load(url, 2), 30)
        runs = measure(small, direct, url)
        memory = memory_of(gateway.started.proc.pid) if gateway.started else {}
        B.log(f"gateway memory after the phases: {memory}")
        if runs and memory:
            runs[-1]["gateway_memory_mib"] = memory
    except (B.Abort, KeyboardInterrupt) as error:
        B.log(f"aborted: {error or 'interrupted'}")
    finally:
        B.stop_all()
    (B.OUT_DIR / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in runs))
    text = report(runs, bg_pct)
    (B.OUT_DIR / "table.md").write_text(text)
    print(text)
    B.log(f"results in {B.OUT_DIR}")
    return 0 if "PASS" in text else 1


if __name__ == "__main__":
    sys.exit(main())
