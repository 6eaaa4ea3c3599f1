"""What a transfer of many files reports: counts, the entries made, and the files that failed.

After borg: a file that fails does not stop the batch; it becomes a ``Failure`` collected in
the ``BatchResult``, carrying the exception class that says why (whose ``exit_code`` the CLI
ends with). Nothing matches error codes as strings: callers test ``isinstance``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from minidropbox.client.values import Entry
from minidropbox.core import errors

MiB = 1024 * 1024
BATCH_BYTES = 4 * MiB  # chunk bytes per /chunks/batch request; the server takes 8
T = TypeVar("T")

Progress = Callable[[int], None]
"""Called with a number of bytes each time that many more are done (from any thread)."""
ParentVersion = int | None | Literal["auto"]


class TransferStopped(KeyboardInterrupt):
    """Ctrl-C: raised in a transfer's worker threads at their next block, so each one
    removes its temp file on the way out instead of finishing the whole batch."""


def stoppable(progress: Progress | None, stop: threading.Event) -> Progress:
    """``progress``, raising ``TransferStopped`` in the calling worker once ``stop`` is set.

    Every transfer reports each block it moves, which makes the progress callback the one
    place every worker passes through often (about every 64 KiB): checking there stops all of
    them within one block, without a stop flag threaded through each layer below."""

    def tick(nbytes: int) -> None:
        if stop.is_set():
            raise TransferStopped
        if progress is not None:
            progress(nbytes)

    return tick


class LocalError(errors.MiniDropboxError):
    """A local file or folder could not be read or written."""

    code = "local_error"


class NotARegularFile(errors.MiniDropboxError):
    """Not a regular file; skipped."""

    code = "not_a_file"


@dataclass
class TransferStats:
    """What a transfer cost. ``chunks_sent + chunks_skipped == chunks_total``."""

    files: int = 0
    bytes_total: int = 0  # size of the files uploaded or downloaded
    bytes_sent: int = 0  # chunk bytes actually uploaded
    bytes_received: int = 0
    chunks_total: int = 0
    chunks_sent: int = 0
    chunks_skipped: int = 0  # the server had them, or they repeat inside this upload
    requests: int = 0  # to the API
    node_requests: int = 0  # to storage nodes (direct transfers)
    unchanged: int = 0  # files already the same on the other side: nothing moved
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _current: str = field(default="", repr=False, compare=False)
    _files_sent: int = field(default=0, repr=False, compare=False)

    def started(self, name: str) -> None:
        """Note the file being worked on now (a progress display shows it)."""
        self._current = name

    @property
    def current(self) -> str:
        return self._current

    def file_sent(self, name: str) -> None:
        """All of ``name``'s bytes are on the server (its commit may still be pending, with
        others of its batch): what an upload's progress display counts as done."""
        with self._lock:
            self._files_sent += 1
        self._current = name

    @property
    def files_sent(self) -> int:
        return self._files_sent

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


@dataclass(frozen=True)
class UploadItem:
    """One file to upload. ``parent_version="auto"`` means "on top of whatever is there".
    ``local_path`` is a path on this machine, or a name in the ``LocalFolder`` uploaded from.
    ``expect_hash``: the content the caller decided to upload (sync: what its scan hashed); a
    file found holding anything else is not committed (``LocalFileChanged``), since the
    caller records that content as what both sides held."""

    local_path: Path | str
    remote_path: str
    parent_version: ParentVersion = "auto"
    expect_hash: str | None = None


@dataclass(frozen=True)
class Failure:
    """One file that did not make it, and why; the others carry on."""

    local_path: str
    remote_path: str
    error: errors.MiniDropboxError

    @property
    def code(self) -> str:
        return self.error.code

    @property
    def message(self) -> str:
        return self.error.message

    @property
    def exit_code(self) -> int:
        return self.error.exit_code

    def as_dict(self) -> dict[str, Any]:
        return {"local_path": self.local_path, "remote_path": self.remote_path,
                "code": self.code, "message": self.message, "exit_code": self.exit_code}


def failure(local: Path | str, remote: str, exc: BaseException) -> Failure:
    """The ``Failure`` for an error a batch carries on after; anything else is re-raised."""
    if isinstance(exc, errors.MiniDropboxError):
        return Failure(str(local), remote, exc)
    if isinstance(exc, OSError):
        return Failure(str(local), remote, LocalError(f"{local}: {exc.strerror or exc}"))
    raise exc


@dataclass
class BatchResult:
    entries: list[Entry] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    stats: TransferStats = field(default_factory=TransferStats)

    @property
    def exit_code(self) -> int:
        """0 when everything made it, else the exit code of the first failure."""
        return self.failures[0].exit_code if self.failures else 0

    def as_dict(self) -> dict[str, Any]:
        return {"entries": [e.as_json() for e in self.entries],
                "failures": [f.as_dict() for f in self.failures],
                "stats": self.stats.as_dict()}


def split_every(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def pack_by_size(items: Iterable[T], size_of: Callable[[T], int],
                 max_bytes: int = BATCH_BYTES, max_count: int = 1000) -> list[list[T]]:
    """Group items in order so each group totals at most ``max_bytes`` (one oversized item
    makes a group of its own) and holds at most ``max_count`` items."""
    groups: list[list[T]] = []
    current: list[T] = []
    current_bytes = 0
    for item in items:
        n = size_of(item)
        if current and (current_bytes + n > max_bytes or len(current) >= max_count):
            groups.append(current)
            current, current_bytes = [], 0
        current.append(item)
        current_bytes += n
    if current:
        groups.append(current)
    return groups
