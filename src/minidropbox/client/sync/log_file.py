"""The background sync's log, ``LOCAL_DIR/.minidropbox/sync.log``, bounded by size.

A sync started with ``--daemon`` runs for months; its log must not fill the disk. It is
rotated by size, as logrotate's ``size`` and ``rotate`` options do: once ``sync.log`` holds
``MAX_BYTES``, the next line starts a new one, the full one becomes ``sync.log.1``, older ones
move up to ``sync.log.BACKUPS``, and the oldest beyond that is deleted. The log and its
backups together stay under ``(BACKUPS + 1) * MAX_BYTES`` plus one write per file.

Everything the process writes goes there: ``sys.stdout`` and ``sys.stderr`` (action lines,
status lines, logging, the last error) become one line-buffered stream over the log, and
file descriptors 1 and 2 point at the current file after each rotation, so what bypasses
Python's streams (faulthandler, a C library's warning) lands in the current file too and is
counted at the next write.
"""

from __future__ import annotations

import io
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

MiB = 1024 * 1024
MAX_BYTES = 4 * MiB  # one log file
BACKUPS = 3  # sync.log.1 .. sync.log.3 kept; 16 MiB in all at most
FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


def backup_path(path: Path, n: int) -> Path:
    return path.with_name(f"{path.name}.{n}")


def shift_backups(path: Path, backups: int = BACKUPS) -> None:
    """``path`` becomes ``path.1``, ``path.1`` becomes ``path.2``...; the oldest goes."""
    backup_path(path, backups).unlink(missing_ok=True)
    for n in range(backups - 1, 0, -1):
        older = backup_path(path, n)
        if older.exists():
            older.replace(backup_path(path, n + 1))
    if path.exists():
        path.replace(backup_path(path, 1))


def rotate_if_full(path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
    """Start a fresh ``path`` if it already holds ``max_bytes`` (before a process that
    appends to it starts)."""
    try:
        full = path.stat().st_size >= max_bytes
    except FileNotFoundError:
        return
    if full:
        shift_backups(path, backups)


class RotatingLog(io.RawIOBase):
    """Appends to ``path``; a write that starts a line once the file holds ``max_bytes``
    goes to a fresh file instead (a line is never split between two files, unless one
    grows past twice the limit without ending). ``fds``: descriptors made to point at the
    current file (1 and 2 for a daemon's output; none in a test)."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS,
                 fds: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.fds = fds
        self.lock = threading.Lock()
        self._open()

    def _open(self) -> None:
        self.fd = os.open(self.path, FLAGS, 0o600)
        self.size = os.fstat(self.fd).st_size
        self.line_start = True
        for target in self.fds:
            os.dup2(self.fd, target)

    def _rotate(self) -> None:
        os.close(self.fd)
        shift_backups(self.path, self.backups)
        self._open()

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.fd

    def write(self, data: ReadableBuffer) -> int:
        chunk = bytes(data)
        if not chunk:
            return 0
        with self.lock:
            # Whatever reached the descriptors directly counts too.
            self.size = max(self.size, os.fstat(self.fd).st_size)
            full = self.size + len(chunk) > self.max_bytes
            if self.size and full and (self.line_start or self.size >= 2 * self.max_bytes):
                self._rotate()
            written = 0
            while written < len(chunk):
                written += os.write(self.fd, chunk[written:])
            self.size += written
            self.line_start = chunk.endswith(b"\n")
        return written

    def close(self) -> None:
        if not self.closed:
            os.close(self.fd)
        super().close()


def send_output_to(path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
    """From now on, everything this process prints goes to ``path``, rotated by size."""
    sys.stdout.flush()
    sys.stderr.flush()
    log = RotatingLog(path, max_bytes, backups, fds=(1, 2))
    stream = io.TextIOWrapper(io.BufferedWriter(log), encoding="utf-8",
                              errors="backslashreplace", line_buffering=True)
    sys.stdout = sys.stderr = stream
