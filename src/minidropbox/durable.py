"""Durable writes on a local disk.

Every writer here follows one ordering: write a temp file in the target directory, fsync it,
rename it into place, fsync the directory. A crash then leaves either the old file or the new
one, never a torn one, and the rename itself survives power loss.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from collections.abc import Callable
from pathlib import Path


def fsync_dir(path: str | Path) -> None:
    """Make the directory entries of ``path`` (renames, creations) durable; errors raise."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir_best_effort(path: str | Path) -> None:
    """``fsync_dir`` for clients: some platforms and file systems cannot open or sync a
    directory, and a download must not fail for that."""
    with contextlib.suppress(OSError):
        fsync_dir(path)


def _load_syncfs() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        call: Callable[[int], int] = libc.syncfs
    except (OSError, AttributeError):  # not Linux/glibc: callers fsync file by file
        return None
    return call


_SYNCFS = _load_syncfs()


def syncfs_available() -> bool:
    return _SYNCFS is not None


def sync_filesystem(fd: int) -> None:
    """Flush every dirty file and directory entry of the file system holding ``fd`` (Linux
    ``syncfs``): one call instead of an fsync per file. It reports write-back errors on that
    file system since ``fd`` was opened (Linux 5.8+), so open ``fd`` before the writes it must
    cover. Only where ``syncfs_available()``."""
    assert _SYNCFS is not None
    if _SYNCFS(fd) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
