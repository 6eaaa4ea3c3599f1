"""Durable writes on a local disk.

Every writer here follows one ordering: write a temp file in the target directory, fsync it,
rename it into place, fsync the directory. A crash then leaves either the old file or the new
one, never a torn one, and the rename itself survives power loss.
"""

from __future__ import annotations

import contextlib
import os
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
