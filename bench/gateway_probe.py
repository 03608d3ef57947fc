#!/usr/bin/env python3
"""``asbru serve`` with one or more probes applied in-process: the A/B switches of the gate's hunt.

  ASBRU_PROBE=gc-default+gcstats gateway_probe.py serve --config ... --workers 1

Each probe removes or measures one suspect of the per-connection cost, so that the gate can run
the unchanged gateway and a variant side by side in the same run (``PROBES`` in gate.py). For
measurement only: none of them is a fix as such (``gc-off`` lets cyclic garbage grow).
Probes apply to the process they start in, so use them with ``--workers 1``.

  gcstats     count and time the garbage collector per generation (gc.callbacks); written as JSON to
              ASBRU_PROBE_OUT when the gateway shuts down
  no-guard    no per-connection deadline checks (the guard never wakes: server/guard.py)
  gc-default  CPython's collector as it comes: no ``runtime.collector.settle`` after start-up (the
              gateway before it: freeze, thresholds 20,000 and 50)
  gc-freeze   gc.freeze() once the gateway has started (start-up objects leave the collector's view)
  gc-off      gc.disable() (reference counting only; to size the collector's share)
  gc-lazy     gc.set_threshold(20_000, 50, 100): fewer young collections, later promotions
  cprofile    SIGUSR1 starts a cProfile of the event loop thread, a second SIGUSR1 stops it and
              writes the stats (pstats format) to ASBRU_PROBE_OUT
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import time
from collections.abc import Callable

PROBES = {p for p in os.environ.get("ASBRU_PROBE", "").split("+") if p}
OUT = os.environ.get("ASBRU_PROBE_OUT")


def gc_stats() -> None:
    totals = {gen: {"collections": 0, "seconds": 0.0, "max_s": 0.0, "collected": 0} for gen in range(3)}
    started: list[float] = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        entry = totals[info["generation"]]
        entry["collections"] += 1
        spent = time.perf_counter() - started[0]
        entry["seconds"] += spent
        entry["max_s"] = max(entry["max_s"], spent)
        entry["collected"] += info["collected"]

    gc.callbacks.append(callback)

    def dump() -> None:
        if OUT:
            summary = {"probe": sorted(PROBES), "gc": totals, "objects": len(gc.get_objects())}
            with open(OUT, "w") as fh:
                json.dump(summary, fh)

    at_shutdown(dump)  # not atexit: uvicorn re-raises SIGTERM after its shutdown, skipping atexit


def cprofile() -> None:
    import cProfile  # noqa: PLC0415 - only when asked for

    profiler = cProfile.Profile()
    running = [False]

    def toggle(_signum: int, _frame: object) -> None:
        if not running[0]:
            profiler.enable()
        else:
            profiler.disable()
            if OUT:
                profiler.dump_stats(OUT)
        running[0] = not running[0]

    signal.signal(signal.SIGUSR1, toggle)


def after_startup(action: Callable[[], None]) -> None:
    from asbru_gateway.app import GatewayApp  # noqa: PLC0415 - after the probes are known

    original = GatewayApp.startup

    async def startup(self: GatewayApp) -> None:
        await original(self)
        action()

    GatewayApp.startup = startup  # type: ignore[method-assign,unused-ignore]


def at_shutdown(action: Callable[[], None]) -> None:
    from asbru_gateway.app import GatewayApp  # noqa: PLC0415 - after the probes are known

    original = GatewayApp.shutdown

    async def shutdown(self: GatewayApp) -> None:
        await original(self)
        action()

    GatewayApp.shutdown = shutdown  # type: ignore[method-assign,unused-ignore]


def apply() -> None:
    unknown = PROBES - {
        "gcstats",
        "gc-default",
        "no-guard",
        "gc-freeze",
        "gc-off",
        "gc-lazy",
        "cprofile",
        "base",
    }
    if unknown:
        raise SystemExit(f"gateway_probe.py: unknown probe(s) {sorted(unknown)}")
    if "gcstats" in PROBES:
        gc_stats()
    if "cprofile" in PROBES:
        cprofile()
    if "gc-default" in PROBES:
        from asbru_gateway.runtime import collector  # noqa: PLC0415

        collector.settle = lambda: None
    if "no-guard" in PROBES:
        from asbru_gateway.server.guard import ConnectionGuard  # noqa: PLC0415

        ConnectionGuard.INTERVAL_S = 1e9
    if "gc-freeze" in PROBES:
        after_startup(gc.freeze)
    if "gc-off" in PROBES:
        after_startup(gc.disable)
    if "gc-lazy" in PROBES:
        after_startup(lambda: gc.set_threshold(20_000, 50, 100))


def main() -> int:
    apply()
    from asbru_gateway.cli import main as asbru  # noqa: PLC0415

    code: int = asbru(sys.argv[1:])
    return code


if __name__ == "__main__":
    sys.exit(main())
