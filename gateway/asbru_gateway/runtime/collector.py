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
- collects the young generation every ``YOUNG_THRESHOLD`` net allocations (CPython: 700) and the
  middle one every ``MIDDLE_COLLECTIONS`` young collections (CPython: 10): most of a request's
  short-lived containers are then freed by reference counting before a collection sees them, and
  an in-flight request's objects are promoted (and walked again) far less often. Measured in the
  load gate, one run: 385 µs CPU per request with 7,000/10, 312 µs with 20,000/50. The oldest
  generation keeps CPython's ratio (every 10 middle collections, and only once a quarter more
  objects were promoted), so cyclic garbage that reached it is still found within ~10 M
  allocations (minutes at a thousand requests a second); the soak benchmark (``bench/soak.py``)
  shows the resident memory flat.

Only the process that ``asbru serve`` runs is settled (``AppSettings.settle_runtime``): a test
process that starts and stops gateways must not freeze its objects.
"""

from __future__ import annotations

import gc
from typing import Final

YOUNG_THRESHOLD: Final = 20_000
"""Net container allocations between young collections (CPython's default: 700)."""
MIDDLE_COLLECTIONS: Final = 50
"""Young collections between two collections of the middle generation (CPython's default: 10)."""


def settle() -> None:
    """Call once, after start-up: freeze what start-up built, and collect less often from now on."""
    gc.collect()
    gc.freeze()
    old = gc.get_threshold()[2]
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_COLLECTIONS, old)
