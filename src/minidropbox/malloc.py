"""glibc's allocator, set up for a server that moves large buffers through many threads.

The API hands request and response bodies around in blocks of up to a few MiB, from the
event loop and from the WebDAV worker threads. glibc gives each thread an arena of its own
(up to eight per core) and, after the first large block is freed, raises its mmap threshold
so that later large blocks come from those arenas; freed, they stay in the arena's heap, and
a long-lived process's RSS creeps up over many large transfers (a 5 GiB WebDAV PUT after
other transfers peaked at 297 MiB). A fixed threshold keeps large blocks in their own
mappings, returned to the system when freed, and fewer arenas bound what small allocations
can strand.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_MMAP_THRESHOLD = -3  # mallopt parameters, from glibc's malloc.h
M_ARENA_MAX = -8
MMAP_THRESHOLD = 256 * 1024  # blocks from here up: mapped on their own (setting it fixes it)
ARENA_MAX = 2


def tune_malloc() -> bool:
    """Apply the settings above where the C library is glibc; False elsewhere (musl's
    allocator and other systems' behave differently and are left alone)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_ARENA_MAX, ARENA_MAX))
