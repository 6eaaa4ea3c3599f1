"""The progress display of ``put`` and ``get`` on stderr: files done of all (``312/1,000
files``), bytes, rate, ETA and the file being worked on, as rclone shows them.

Shown only on a terminal, once a transfer has run for a second; never in a pipe, nor with
``--quiet`` or ``--json``. One line, fitted to the terminal's width: the counts, rate and ETA
always; then the current name (its end, which holds the file's own name); the bar only in
the room left. Fed from any thread: byte counts through ``__call__``; file counts and the
current name read from the transfer's ``TransferStats`` at each refresh.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from types import TracebackType

from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.progress import BarColumn, DownloadColumn, Progress, Task, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from minidropbox.cli.listing import shown_name
from minidropbox.cli.state import CliState
from minidropbox.core.units import human_bytes

PROGRESS_DELAY = 1.0  # seconds a transfer runs before its display appears
NAME_WIDTH = 32  # cells of the current file's name shown at most (its end)
NAME_MIN = 12  # below this the name is not worth showing
BAR_WIDTH = 20  # cells of the bar at most; it goes first when the terminal is narrow
BAR_MIN = 6


def files_text(done: int, total: int) -> str:
    return f"{done:,}/{total:,} file{'s' if total != 1 else ''}"


def rate_text(bytes_per_second: float | None) -> str:
    """Binary units, as the byte counts beside it: ``1.5 MiB/s``; ``?`` until known."""
    return "?/s" if bytes_per_second is None else f"{human_bytes(int(bytes_per_second))}/s"


def short_name(path: str, width: int = NAME_WIDTH) -> str:
    """The end of ``path`` (the file's own name matters most), at most ``width`` cells."""
    shown = shown_name(path)
    if cell_len(shown) <= width:
        return shown
    cut = 0
    while cell_len(shown[cut:]) > width - 1:
        cut += 1
    return "…" + shown[cut:]


class TransferLine:
    """One task's line for a terminal ``width`` cells wide (one cell is left free: a line
    that fills the terminal wraps on some of them)."""

    def __init__(self, files_total: int = 0, files_done: Callable[[], int] | None = None,
                 current: Callable[[], str] | None = None) -> None:
        self.files_total = files_total
        self.files_done = files_done if files_total > 1 else None
        self.current = current
        self.size = DownloadColumn(binary_units=True)
        self.eta = TimeRemainingColumn()

    def head(self, task: Task) -> str:
        """What comes before the bar: what is done, and how many files of all."""
        if self.files_done is None:
            return str(task.description)
        done = min(self.files_done(), self.files_total)
        return f"{task.description} {files_text(done, self.files_total)}"

    def tail(self, task: Task) -> str:
        """What comes after the bar: bytes, rate, time left."""
        return " ".join([self.size.render(task).plain,
                         rate_text(task.finished_speed or task.speed),
                         self.eta.render(task).plain])

    def render(self, task: Task, width: int) -> RenderableType:
        head, tail = self.head(task), self.tail(task)
        room = width - 1 - cell_len(head) - 1 - cell_len(tail)
        name = shown_name(self.current()) if self.current is not None else ""
        name_width = min(cell_len(name), NAME_WIDTH, room - 1)
        if name_width < min(NAME_MIN, cell_len(name)):
            name_width = 0  # a few letters of a name say nothing
        room -= name_width + 1 if name_width else 0
        bar_width = min(BAR_WIDTH, room - 1)
        row: list[RenderableType] = [Text(head)]
        if bar_width >= BAR_MIN:
            row.append(BarColumn(bar_width=bar_width).render(task))
        row.append(Text(tail))
        if name_width:
            row.append(Text(short_name(name, name_width), no_wrap=True))
        grid = Table.grid(padding=(0, 1))
        grid.add_row(*row)
        return grid


class _LineProgress(Progress):
    def __init__(self, line: TransferLine, console: Console) -> None:
        super().__init__(console=console, transient=True)
        self.line = line

    def get_renderables(self) -> Iterable[RenderableType]:
        for task in self.tasks:
            yield self.line.render(task, self.console.width)


def on_terminal(console: Console) -> bool:
    """stderr is a terminal that can redraw a line (not a pipe, a file, or TERM=dumb)."""
    try:
        tty = sys.stderr.isatty()
    except ValueError:  # closed
        return False
    return tty and not console.is_dumb_terminal


class ProgressBar:
    """Called with byte counts from any thread; ``files_done`` and ``current`` are read at
    each refresh (both optional: a single stream knows neither)."""

    def __init__(self, state: CliState, description: str, total: int, *,
                 files_total: int = 0, files_done: Callable[[], int] | None = None,
                 current: Callable[[], str] | None = None,
                 console: Console | None = None) -> None:
        console = console or state.err_console
        self.enabled = not (state.quiet or state.as_json) and on_terminal(console)
        self.line = TransferLine(files_total, files_done, current)
        self.progress = _LineProgress(self.line, console)
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
