"""What ``minidropbox sync`` tells its user: a log line per action, and one status line.

Action lines go to stdout with the time (so a terminal or a log file shows what happened);
the status line (idle / syncing N files, rate) is redrawn in place on stderr when it is a
terminal, and written only when it changes otherwise.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


def human_rate(nbytes: int, seconds: float) -> str:
    rate = nbytes / seconds if seconds > 0 else 0.0
    for unit in ("B/s", "KiB/s", "MiB/s", "GiB/s"):
        if rate < 1024 or unit == "GiB/s":
            return f"{rate:.0f} {unit}" if unit == "B/s" else f"{rate:.1f} {unit}"
        rate /= 1024
    raise AssertionError("unreachable")


class Status:
    def __init__(self, quiet: bool = False, out: TextIO | None = None,
                 err: TextIO | None = None) -> None:
        self.quiet = quiet
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

    def show(self, text: str) -> None:
        """Replace the status line."""
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
        self.show("idle")

    def syncing(self, count: int, nbytes: int = 0, seconds: float = 0.0) -> None:
        text = f"syncing {count} file{'s' if count != 1 else ''}"
        if nbytes:
            text += f", {human_rate(nbytes, seconds)}"
        self.show(text)

    def close(self) -> None:
        if self.tty and self.line and not self.quiet:
            self.err.write("\n")
            self.err.flush()
