"""The progress bar of ``put`` and ``get``: bytes, rate and ETA on stderr."""

from __future__ import annotations

import threading
from types import TracebackType

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from minidropbox.cli.state import CliState

PROGRESS_DELAY = 1.0  # seconds a transfer runs before its bar appears


class ProgressBar:
    """Bytes, rate and ETA on stderr, shown only once a transfer has run for a second.

    Called with byte counts from any thread; silent with ``--quiet`` or ``--json``.
    """

    def __init__(self, state: CliState, description: str, total: int) -> None:
        self.enabled = not (state.quiet or state.as_json)
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(binary_units=True),
            TransferSpeedColumn(), TimeRemainingColumn(),
            console=state.err_console, transient=True)
        self.task = self.progress.add_task(description, total=total or None)
        self.lock = threading.Lock()
        self.shown = False
        self.timer = threading.Timer(PROGRESS_DELAY, self._show)
        self.timer.daemon = True

    def _show(self) -> None:
        with self.lock:
            if not self.shown:
                self.progress.start()
                self.shown = True

    def __call__(self, nbytes: int) -> None:
        self.progress.advance(self.task, nbytes)

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            self.timer.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.timer.cancel()
        with self.lock:
            if self.shown:
                self.progress.stop()
            self.shown = True  # a late timer must not start it now
