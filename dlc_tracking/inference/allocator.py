"""Keep glibc from unmapping and remapping the network's activation buffers.

A forward pass allocates and frees buffers of megabytes per layer. Above glibc's mmap
threshold each one is a fresh ``mmap`` and a ``munmap`` on free, so every batch pays
millions of page faults in the kernel (30-45 % of DLC's CPU time measured here, see
BENCHMARKS.md). Raising the mmap threshold and the trim threshold makes freed buffers
stay in the heap and be reused: the same effect as
``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=...:glibc.malloc.trim_threshold=...``, which
glibc reads only at process start, but applied with ``mallopt`` inside the running
process, so it reaches every process that runs inference (the Dagster run or step
process, ``dlc-platform predict``, workers) without a re-exec or a wrapper script.

The cost: up to :data:`THRESHOLD_BYTES` of freed memory per arena may stay mapped instead
of going back to the system while the process lives.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1  # glibc malloc.h
M_MMAP_THRESHOLD = -3
THRESHOLD_BYTES = 2**31 - 1  # mallopt takes an int: the largest value it accepts
_applied: dict[str, bool] = {}


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds in this process (once; no-op elsewhere).

    Returns
    -------
    bool
        True when glibc accepted both settings (now or on an earlier call).
    """
    if "ok" in _applied:
        return _applied["ok"]
    ok = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            ok = bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES)) and bool(
                mallopt(M_TRIM_THRESHOLD, THRESHOLD_BYTES))
        except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
            ok = False
    _applied["ok"] = ok
    return ok
