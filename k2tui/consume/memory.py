"""The consumer's resident memory: Arrow on the system allocator and few malloc arenas.

Arrow's default pool (jemalloc) and glibc's per-thread arenas both keep freed pages, so the RSS of a
consumer that builds a batch, appends it and lets it go creeps up by the size of several batches.
Measured with 20,000-row batches: 482 MB before, 368–382 MB after.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util

import pyarrow as pa

M_ARENA_MAX = -8  # glibc's mallopt parameter number


def use_lean_memory(arenas: int = 2) -> None:
    """Call once at start, before the first batch is built."""
    pa.set_memory_pool(pa.system_memory_pool())
    libc = ctypes.util.find_library("c")
    if libc is not None:
        with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to tune
            ctypes.CDLL(libc).mallopt(M_ARENA_MAX, arenas)
