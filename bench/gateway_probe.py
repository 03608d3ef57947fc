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
  malloc-default  glibc's allocator as it comes: no ``runtime.allocator.settle`` after start-up
  gc-freeze   gc.freeze() once the gateway has started (start-up objects leave the collector's view)
  gc-off      gc.disable() (reference counting only; to size the collector's share)
  gc-lazy     gc.set_threshold(20_000, 50, 100): fewer young collections, later promotions
  stalls      the asyncio loop instead of uvloop, every callback timed: a histogram of how long the loop
              was held at a time, the slowest callbacks, and the steps (from one await to the next)
              that took longer than ASBRU_PROBE_STALL_US (500), as JSON to ASBRU_PROBE_OUT at shutdown
              (to find what delays every other request; absolute times are the asyncio loop's)
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


def stalls() -> None:
    import asyncio.events  # noqa: PLC0415 - only when asked for

    from asbru_gateway.server import run  # noqa: PLC0415

    bounds_us = (50, 100, 200, 500, 1000, 2000, 5000, 10000)
    histogram = dict.fromkeys((*bounds_us, "more"), 0)
    slowest: list[tuple[float, str]] = []
    threshold_us = float(os.environ.get("ASBRU_PROBE_STALL_US", "500"))
    by_step: dict[str, list[float]] = {}
    original_run = asyncio.events.Handle._run

    def where(handle: asyncio.events.Handle) -> str:
        """The innermost await of the task a handle steps: where the task stands."""
        task = getattr(handle._callback, "__self__", None)
        coro = task.get_coro() if isinstance(task, asyncio.Task) else None
        places = []
        while coro is not None and len(places) < 12:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is None:
                break
            places.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        return " > ".join(places)

    def timed_run(self: asyncio.events.Handle) -> None:
        before = where(self)
        started = time.perf_counter()
        original_run(self)
        spent_us = (time.perf_counter() - started) * 1e6
        for bound in bounds_us:
            if spent_us <= bound:
                histogram[bound] += 1
                break
        else:
            histogram["more"] += 1
        if spent_us > threshold_us:
            step = f"{before}  ==>  {where(self)}"[:600]
            slowest.append((spent_us, step))
            totals = by_step.setdefault(step, [0, 0.0])
            totals[0] += 1
            totals[1] += spent_us
            if len(slowest) > 400:
                slowest.sort(reverse=True)
                del slowest[200:]

    asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]
    original_config = run.server_config

    def asyncio_config(app: object, **options: object) -> object:
        return original_config(app, **{**options, "loop": "asyncio"})

    run.server_config = asyncio_config  # type: ignore[assignment]

    def dump() -> None:
        if OUT:
            slowest.sort(reverse=True)
            steps = sorted(by_step.items(), key=lambda kv: -kv[1][1])[:30]
            summary = {"probe": sorted(PROBES), "histogram_us": {str(k): v for k, v in histogram.items()},
                       "slowest": slowest[:60], "steps_over_threshold": steps}  # fmt: skip
            with open(OUT, "w") as fh:
                json.dump(summary, fh, indent=1)

    at_shutdown(dump)


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
        "malloc-default",
        "no-guard",
        "gc-freeze",
        "gc-off",
        "gc-lazy",
        "cprofile",
        "stalls",
        "base",
    }
    if unknown:
        raise SystemExit(f"gateway_probe.py: unknown probe(s) {sorted(unknown)}")
    if "gcstats" in PROBES:
        gc_stats()
    if "cprofile" in PROBES:
        cprofile()
    if "stalls" in PROBES:
        stalls()
    if "gc-default" in PROBES:
        from asbru_gateway.runtime import collector  # noqa: PLC0415

        collector.settle = lambda: None
    if "malloc-default" in PROBES:
        from asbru_gateway.runtime import allocator  # noqa: PLC0415

        allocator.settle = lambda: False
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
