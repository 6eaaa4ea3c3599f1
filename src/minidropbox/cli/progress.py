"""The progress display of ``put`` and ``get`` on stderr: files done of all (``312/1,000
files``), the file being worked on, bytes, rate and ETA, as rclone shows them.

Shown on a terminal only once a transfer has run for a second; silent with ``--quiet`` or
``--json``. Fed from any thread: byte counts through ``__call__``, file counts and the
current name read from the transfer's ``TransferStats`` at each refresh.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from minidropbox.cli.listing import shown_name
from minidropbox.cli.state import CliState

PROGRESS_DELAY = 1.0  # seconds a transfer runs before its display appears
NAME_WIDTH = 32  # characters of the current file's name shown (its end: the name itself)


def files_text(done: int, total: int) -> str:
    return f"{done:,}/{total:,} file{'s' if total != 1 else ''}"


def short_name(path: str, width: int = NAME_WIDTH) -> str:
    """The end of ``path`` (the file's own name matters most), at most ``width`` long."""
    shown = shown_name(path)
    return shown if len(shown) <= width else "…" + shown[-(width - 1):]


class _FilesColumn(ProgressColumn):
    def __init__(self, done: Callable[[], int], total: int) -> None:
        super().__init__()
        self.done = done
        self.total = total

    def render(self, task: Task) -> Text:
        return Text(files_text(min(self.done(), self.total), self.total))


class _NameColumn(ProgressColumn):
    def __init__(self, current: Callable[[], str]) -> None:
        super().__init__()
        self.current = current

    def render(self, task: Task) -> Text:
        return Text(short_name(self.current()).ljust(NAME_WIDTH), no_wrap=True)


class ProgressBar:
    """Called with byte counts from any thread; ``files_done`` and ``current`` are read at
    each refresh (both optional: a single stream knows neither)."""

    def __init__(self, state: CliState, description: str, total: int, *,
                 files_total: int = 0, files_done: Callable[[], int] | None = None,
                 current: Callable[[], str] | None = None,
                 console: Console | None = None) -> None:
        self.enabled = not (state.quiet or state.as_json)
        columns: list[ProgressColumn] = [TextColumn("{task.description}")]
        if files_done is not None and files_total > 1:
            columns.append(_FilesColumn(files_done, files_total))
        columns += [BarColumn(bar_width=20), DownloadColumn(binary_units=True),
                    TransferSpeedColumn(), TimeRemainingColumn()]
        if current is not None:
            columns.append(_NameColumn(current))
        self.progress = Progress(*columns, console=console or state.err_console,
                                 transient=True)
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
