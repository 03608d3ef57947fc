"""glibc's allocator settled for large bodies (``runtime.allocator``): freed memory is reused.

Four 1.1 MB bodies built and dropped, fifty times over, as four requests with large answers do:
with glibc's defaults each round faults its pages in anew (the freed top of the heap goes back to
the kernel), settled it reuses them. Counted as minor page faults in a fresh interpreter each, so
no other test's allocations interfere.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

ROUNDS = """
import resource, sys
from asbru_gateway.runtime import allocator
if sys.argv[1] == "settled":
    assert allocator.settle()
parts = [b"x" * 100_000 for _ in range(11)]
for _ in range(3):
    bodies = [b"".join(parts) for _ in range(4)]
    del bodies
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    bodies = [b"".join(parts) for _ in range(4)]
    del bodies
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="settles glibc's allocator only")


def _page_faults(mode: str, env: dict[str, str] | None = None) -> int:
    done = subprocess.run(
        [sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, timeout=60, check=True, env=env
    )
    return int(done.stdout.strip())


@glibc_only
def test_settled_allocator_reuses_the_memory_of_large_bodies() -> None:
    default, settled = _page_faults("default"), _page_faults("settled")
    assert default > 10_000, "the defaults fault large bodies in anew (the case this settles)"
    assert settled < default // 20


@glibc_only
def test_glibc_variables_in_the_environment_win() -> None:
    """A pod that sets glibc's own trim threshold (to keep less memory) keeps its setting."""
    environment = {**os.environ, "MALLOC_TRIM_THRESHOLD_": str(128 * 1024)}
    assert _page_faults("settled", environment) > 10_000
