"""glibc's allocator, set so that large response bodies reuse memory instead of faulting it in anew.

Why: a body of a megabyte is allocated at least once per request (aiohttp joins what it read, a
translator may copy it), and glibc serves an allocation that large with a fresh ``mmap`` (its
threshold starts at 128 KiB and only creeps up) or returns the freed top of its heap to the
kernel as soon as 128 KiB lie free there. Either way the next body touches new pages: 256 page
faults per megabyte, each a kernel entry that zeroes 4 KiB. Measured with ``bench/isolation.py``
(one core, four connections fetching 1 MB bodies): ``bytes.join`` of a 1 MB body took ~500 µs,
most of the gateway's time per large request, and held the event loop for all that time.

So, once, in the process that ``asbru serve`` runs (:func:`settle`): allocations up to
``MMAP_THRESHOLD`` come from the heap, and up to ``TRIM_THRESHOLD`` of free memory at its top is
kept for the next body. The price is resident memory: after a burst of large bodies the process
keeps up to ``TRIM_THRESHOLD`` more than it uses (``bench/soak.py`` shows the resident size).
Setting either value also stops glibc's own sliding adjustment of both.

glibc's own variables win: where ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` is set
in the environment (a pod with a tight memory limit may want less kept), that setting is left
alone. Other C libraries (musl, macOS) are left as they are.
"""

from __future__ import annotations

import ctypes
import os
import platform
from typing import Final

M_TRIM_THRESHOLD: Final = -1
M_MMAP_THRESHOLD: Final = -3
"""``mallopt`` parameters, from glibc's ``malloc.h``."""

MMAP_THRESHOLD: Final = 32 * 1024 * 1024
"""Allocations below this come from the heap (glibc's largest allowed value on 64-bit)."""
TRIM_THRESHOLD: Final = 64 * 1024 * 1024
"""Free memory at the heap's top beyond this goes back to the kernel."""


SETTINGS: Final = (
    (M_MMAP_THRESHOLD, MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_"),
    (M_TRIM_THRESHOLD, TRIM_THRESHOLD, "MALLOC_TRIM_THRESHOLD_"),
)


def settle() -> bool:
    """Call once per process; whether glibc took every setting not set in the environment."""
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    taken = [bool(mallopt(param, value)) for param, value, variable in SETTINGS if variable not in os.environ]
    return all(taken)
