"""The cyclic garbage collector, set for a process that holds many requests in flight.

Why: in the load gate (1,000 connections, each request in flight for a second) the collector was
the cost that grew with the number of open connections. Every in-flight request holds objects that
outlive a young collection, so they are promoted and scanned again by every older collection, and
a full collection walks everything alive: the start-up objects (modules, config, pydantic models:
~57 k) plus all requests in flight. Measured under callgrind at a fixed request rate, the collector
went from ~9 k instructions per request at 16 connections to ~39 k at 1,000, and its full
collections paused the event loop for up to 140 ms (the gate's p99).

So, once the gateway has started, :func:`settle`

- collects once and freezes what is left (``gc.freeze``): start-up objects live as long as the
  process, and a full collection no longer walks them;
- raises the young generation's threshold from 700 to ``YOUNG_THRESHOLD`` allocations, so that most
  of a request's short-lived containers are freed by reference counting before a collection sees
  them, and collections run an order of magnitude less often. The older generations keep
  CPython's ratios, so cyclic garbage is still found within a bounded number of allocations (the
  soak benchmark, ``bench/soak.py``, shows the resident memory flat).

Only the process that ``asbru serve`` runs is settled (``AppSettings.settle_collector``): a test
process that starts and stops gateways must not freeze its objects.
"""

from __future__ import annotations

import gc
from typing import Final

YOUNG_THRESHOLD: Final = 7_000
"""Net container allocations between young collections (CPython's default: 700)."""


def settle() -> None:
    """Call once, after start-up: freeze what start-up built, and collect less often from now on."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
