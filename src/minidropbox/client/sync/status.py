"""What ``minidropbox sync`` tells its user: a log line per action, and one status line.

Action lines go to stdout with the time (so a terminal or a log file shows what happened);
the status line (idle / syncing N files, rate) is redrawn in place on stderr when it is a
terminal, and written only when it changes otherwise. The same state (plus the last error
and the files that cannot be synced) goes to ``on_change``, which the sync client writes to
``.minidropbox/status.json`` for ``minidropbox status``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class SyncState:
    """A running sync, as ``minidropbox status`` shows it."""

    state: str = "starting"
    queue: int = 0  # actions of the round in progress
    last_error: str | None = None
    last_error_at: float | None = None
    skipped: list[str] = field(default_factory=list)


def human_rate(nbytes: int, seconds: float) -> str:
    rate = nbytes / seconds if seconds > 0 else 0.0
    for unit in ("B/s", "KiB/s", "MiB/s", "GiB/s"):
        if rate < 1024 or unit == "GiB/s":
            return f"{rate:.0f} {unit}" if unit == "B/s" else f"{rate:.1f} {unit}"
        rate /= 1024
    raise AssertionError("unreachable")


class Status:
    def __init__(self, quiet: bool = False, out: TextIO | None = None,
                 err: TextIO | None = None,
                 on_change: Callable[[SyncState], None] | None = None) -> None:
        self.quiet = quiet
        self.state = SyncState()
        self.on_change = on_change
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.tty = self.err.isatty()
        self.line = ""
        self.lock = threading.Lock()

    def action(self, message: str) -> None:
        """One thing sync did (or failed to do)."""
        if self.quiet:
            return
        with self.lock:
            if self.tty and self.line:
                self.err.write("\r\x1b[K")
            self.out.write(f"{time.strftime('%H:%M:%S')} {message}\n")
            self.out.flush()
            if self.tty and self.line:
                self.err.write(self.line)
                self.err.flush()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self.state)

    def error(self, message: str) -> None:
        """A round failed and will be retried: kept as the last error."""
        self.state.last_error, self.state.last_error_at = message, time.time()
        self._changed()

    def set_skipped(self, lines: list[str]) -> None:
        if lines != self.state.skipped:
            self.state.skipped = list(lines)
            self._changed()

    def show(self, text: str) -> None:
        """Replace the status line."""
        if text != self.state.state:
            self.state.state = text
            self._changed()
        if self.quiet or text == self.line:
            return
        with self.lock:
            self.line = text
            if self.tty:
                self.err.write("\r\x1b[K" + text)
            else:
                self.err.write(f"{time.strftime('%H:%M:%S')} status: {text}\n")
            self.err.flush()

    def idle(self) -> None:
        self.state.queue = 0
        self.show("idle")

    def syncing(self, count: int, nbytes: int = 0, seconds: float = 0.0) -> None:
        self.state.queue = count
        text = f"syncing {count} file{'s' if count != 1 else ''}"
        if nbytes:
            text += f", {human_rate(nbytes, seconds)}"
        self.show(text)

    def close(self) -> None:
        if self.tty and self.line and not self.quiet:
            self.err.write("\n")
            self.err.flush()
