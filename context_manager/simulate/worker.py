"""Setting up a worker process for the vectorized path: the C allocator.

The vectorized path allocates and frees arrays of tens of megabytes per sub-batch. glibc
keeps such memory for reuse by raising its mmap threshold as it goes, unless the process
fixed its trim threshold through ``MALLOC_TRIM_THRESHOLD_``: then every large array is a
fresh ``mmap`` whose pages fault in again. A Dask nanny sets that variable (65,536 bytes) for
its workers, which made the same tasks cost about twice the CPU of a process pool
(``benchmarks/bench_simulator.py``, the Dask rows). Where the variable is set, `tune_allocator`
gives large arrays back their reuse: blocks below 32 MiB come from the heap again, and up to
64 MiB of freed heap stays mapped. Elsewhere it changes nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "allocator_tuned", "tune_allocator"]

MMAP_THRESHOLD = 32 * 2**20
"""Blocks from this size on are mapped on their own (glibc's own ceiling for its dynamic one)."""
TRIM_THRESHOLD = 64 * 2**20
"""Freed heap above this much is given back to the system."""

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False
_tuned = False


def allocator_tuned() -> bool:
    """Whether `tune_allocator` changed this process's allocator."""
    return _tuned


def tune_allocator() -> bool:
    """Once per process: undo an eager ``MALLOC_TRIM_THRESHOLD_`` for large arrays.

    Returns whether the allocator was changed (only under glibc, only when the variable is
    set below `TRIM_THRESHOLD`).
    """
    global _done, _tuned
    if _done:
        return False
    _done = True
    try:
        forced = int(os.environ.get("MALLOC_TRIM_THRESHOLD_", ""))
    except ValueError:
        return False
    if forced >= TRIM_THRESHOLD:
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False  # not glibc (musl, macOS): nothing to undo
    _tuned = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return _tuned
