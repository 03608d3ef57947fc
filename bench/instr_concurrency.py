#!/usr/bin/env python3
"""Instructions per request as the number of open connections grows, at a fixed request rate.

The load gate's question (issue 9 §1: "find where the cost per request grows with connection
count") asked of callgrind, which does not depend on the machine's load. The gateway runs under
callgrind; a slow mock answers after DELAY = CONNS / RATE seconds, so that CONNS connections in a
closed loop make RATE requests per second whatever CONNS is (valgrind's gateway handles ~40/s).
The client (stdlib asyncio, below) starts the connections staggered over one DELAY, so arrivals
are even, not one synchronised wave. After one DELAY (every connection has a request in flight)
instrumentation is switched on for WINDOW_S seconds; instructions / requests completed in that
window = instructions per request. The collector's share is read from the dump (gcmodule.c), and
variants of the gateway (gateway_probe.py: ``gc-default``, ``gc-off``, ``no-guard``, ``gc-freeze``...)
show what each suspect costs.

  bench/instr_concurrency.py     env: CONN_COUNTS="16 1000" RATE=20 WINDOW_S=40 VARIANTS="base gc-off"
                                 OUT_DIR ASBRU PYTHON

Note the time-based costs: with DELAY = CONNS / RATE, a request lasts DELAY seconds, so a cost per
connection per second (the connection guard's check) weighs DELAY times per request here, against
~1 in the 1 s gate. Each variant's table row says so. Bounded; everything is stopped by PID.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import bench as B
import gate as G
from bench import Row

HERE = Path(__file__).resolve().parent
CONN_COUNTS = [int(c) for c in B.env("CONN_COUNTS", "16 1000").split()]
RATE = float(B.env("RATE", "20"))
WINDOW_S = float(B.env("WINDOW_S", "40"))
VARIANTS = B.env("VARIANTS", "base gc-off").split()
BODY = json.dumps({"model": G.MODEL, **B.CHAT}).encode()


async def client(port: int, conns: int, delay: float, stop_at: float, done: list[float]) -> None:
    """``conns`` keep-alive connections in a closed loop, started evenly over ``delay`` seconds;
    the completion time of every answered request goes to ``done``."""
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            f"content-type: application/json\r\nauthorization: Bearer {B.CLIENT_KEY}\r\n"
            f"content-length: {len(BODY)}\r\n\r\n").encode()  # fmt: skip

    async def one(index: int) -> None:
        await asyncio.sleep(index * delay / conns)
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        try:
            while time.monotonic() < stop_at:
                writer.write(head + BODY)
                status = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                if b" 200 " in status:
                    done.append(time.monotonic())
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    await asyncio.gather(*(one(i) for i in range(conns)))


def measure(variant: str, conns: int, config: Path, port: int) -> Row:
    delay = conns / RATE
    mock_port = B.free_port(18895)
    config.write_text(G.gate_config(mock_port))
    cmd = [G.PYTHON, str(HERE / "slow_upstream.py"), "--port", str(mock_port), "--delay", f"{delay:g}"]
    mock = B.start("slow-mock", cmd, None)
    B.wait_until(
        "slow mock", lambda: B.http("GET", f"http://127.0.0.1:{mock_port}/health")[0] == 200, mock, 15
    )
    serve = ["serve", "--config", str(config), "--no-watch", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning"]  # fmt: skip
    outdir = B.OUT_DIR / f"{variant}-c{conns}"
    outdir.mkdir(parents=True, exist_ok=True)
    tool = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={outdir}/cg.%p",
            "--dump-line=no", "--compress-strings=no"]  # fmt: skip
    cmd = [*tool, G.PYTHON, str(HERE / "gateway_probe.py"), *serve]  # "base": no probe applied
    gw = B.start(f"gateway-{variant}", cmd, None, {**G.UPSTREAM_KEY, "ASBRU_PROBE": variant})
    B.wait_until(
        "gateway", lambda: B.http("GET", f"http://127.0.0.1:{port}/readyz", timeout=20)[0] == 200, gw, 240
    )
    B.http(
        "POST",
        f"http://127.0.0.1:{port}/v1/chat/completions",
        {"model": G.MODEL, **B.CHAT},
        timeout=delay + 60,
    )

    def ctl(*args: str) -> None:
        subprocess.run(
            ["callgrind_control", *args, str(gw.proc.pid)], capture_output=True, timeout=120, check=False
        )

    done: list[float] = []
    t0 = time.monotonic()
    on_at, off_at = t0 + delay * 1.2 + 2, t0 + delay * 1.2 + 2 + WINDOW_S

    async def run() -> None:
        load = asyncio.ensure_future(client(port, conns, delay, off_at + 1, done))
        await asyncio.sleep(on_at - time.monotonic())
        await asyncio.to_thread(ctl, "-z")
        await asyncio.to_thread(ctl, "-i", "on")
        started = time.monotonic()
        await asyncio.sleep(off_at - time.monotonic())
        await asyncio.to_thread(ctl, "-d", "window")
        await asyncio.to_thread(ctl, "-i", "off")
        window[:] = [started, time.monotonic()]
        load.cancel()

    window: list[float] = []
    B.log(f"{variant} c={conns}: delay {delay:g} s, window {WINDOW_S:g} s starts in {on_at - t0:.0f} s")
    asyncio.run(run())
    time.sleep(0.5)
    requests = sum(1 for t in done if window[0] <= t <= window[1])
    dumps = [
        f for f in outdir.glob(f"cg.{gw.proc.pid}.*") if re.fullmatch(rf"cg\.{gw.proc.pid}\.\d+", f.name)
    ]
    total, gc_ir = 0, 0
    for f in dumps:
        text = f.read_text(errors="replace")
        m = re.search(r"^(?:totals|summary):\s+(\d+)", text, re.M)
        total += int(m.group(1)) if m else 0
        gc_ir += gc_instructions(f)
    B.stop(gw)
    B.stop(mock)
    row: Row = {
        "variant": variant,
        "conns": conns,
        "delay_s": delay,
        "requests": requests,
        "ir": total,
        "gc_ir": gc_ir,
    }
    row["ir_per_req"] = total / requests if requests else None
    row["gc_per_req"] = gc_ir / requests if requests else None
    B.log(f"{variant} c={conns}: {requests} requests in the window, "
          f"{(row['ir_per_req'] or 0) / 1e3:,.0f} k instr./request, "
          f"collector {(row['gc_per_req'] or 0) / 1e3:,.0f} k")  # fmt: skip
    return row


def gc_instructions(dump: Path) -> int:
    """Instructions spent collecting cycles: ``gc_collect_main`` inclusive (the traversals it makes).
    Allocation-time tracking (``_PyObject_GC_New`` and co.) is not counted: it is paid with or
    without collections."""
    cp = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(dump)],
                        capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    (dump.parent / f"{dump.name}.inclusive.txt").write_text(cp.stdout)
    for line in cp.stdout.splitlines():
        m = re.match(r"\s*([\d,]+) \(", line)
        if m and "gcmodule.c:gc_collect_main " in line:
            return int(m.group(1).replace(",", ""))
    return 0


def table(rows: list[Row]) -> str:
    out = [f"Rate {RATE:g} requests/s at every connection count (mock delay = connections / rate), "
           f"{WINDOW_S:g} s window under callgrind.", "",
           "| variant | connections | mock delay s | requests | k instr. / request "
           "| of which the collector |",
           "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        per = "–" if r["ir_per_req"] is None else f"{r['ir_per_req'] / 1e3:,.0f}"
        gc_k = "–" if r["gc_per_req"] is None else f"{r['gc_per_req'] / 1e3:,.0f}"
        out.append(f"| {r['variant']} | {r['conns']} | {r['delay_s']:g} | {r['requests']} | {per} | {gc_k} |")
    return "\n".join(out) + "\n"


def main() -> int:
    B.OUT_DIR = B.begin("instr-conc")
    import resource  # noqa: PLC0415

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000) if hard > 0 else 20000, hard))
    port = B.free_port(18885)
    rows: list[Row] = []
    try:
        for conns in CONN_COUNTS:
            for variant in VARIANTS:
                rows.append(measure(variant, conns, B.OUT_DIR / "gate.yaml", port))
    except (B.Abort, KeyboardInterrupt) as error:
        B.log(f"aborted: {error or 'interrupted'}")
    finally:
        B.stop_all()
    (B.OUT_DIR / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = table(rows)
    (B.OUT_DIR / "table.md").write_text(text)
    print(text)
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
