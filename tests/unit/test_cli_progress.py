"""The transfer progress line: files done of all, bytes, rate, ETA and the current file, fitted
to the terminal's width."""

from __future__ import annotations

import io

from rich.console import Console

from minidropbox.cli.progress import ProgressBar, files_text, rate_text, short_name
from minidropbox.cli.state import CliState
from minidropbox.client.batch import TransferStats

MiB = 1024 * 1024


def _render(bar: ProgressBar, width: int = 200) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=width, color_system=None)
    for task in bar.progress.tasks:
        console.print(bar.line.render(task, width))
    return out.getvalue()


def _many() -> tuple[ProgressBar, TransferStats]:
    stats = TransferStats()
    bar = ProgressBar(CliState(), "download", 1000 * MiB, files_total=1000,
                      files_done=lambda: stats.files, current=lambda: stats.current)
    stats.add(files=312)
    stats.started("/Photos/2024/holiday/IMG_0312.jpg")
    bar(312 * MiB)
    return bar, stats


def test_many_files_show_count_name_bytes() -> None:
    bar, _ = _many()
    line = _render(bar)
    assert "312/1,000 files" in line
    assert "…hotos/2024/holiday/IMG_0312.jpg" in line  # its last 32 cells
    assert "312.0/1,000.0 MiB" in line
    assert "━" in line  # room for the bar


def test_a_narrow_terminal_keeps_counts_rate_eta_and_the_name_then_the_bar() -> None:
    bar, _ = _many()
    for width in (80, 70, 60):
        lines = _render(bar, width).splitlines()
        assert len(lines) == 1 and len(lines[0]) < width, lines
        assert "312/1,000 files" in lines[0] and "312.0/1,000.0 MiB" in lines[0]
        assert "?/s -:--:--" in lines[0]
        assert "━" not in lines[0]  # the bar goes first...
        assert ("IMG_0312.jpg" in lines[0]) == (width > 60)  # ...then the name


def test_one_file_shows_no_count() -> None:
    bar = ProgressBar(CliState(), "upload", 10, files_total=1, files_done=lambda: 0)
    assert "files" not in _render(bar)


def test_formatting() -> None:
    assert files_text(0, 1) == "0/1 file"
    assert files_text(1234, 5678) == "1,234/5,678 files"
    assert short_name("/a/" + "x" * 100 + "/name.txt").endswith("/name.txt")
    assert len(short_name("/a/" + "x" * 100 + "/name.txt")) == 32
    assert short_name("/bad\nname") == "'/bad\\nname'"
    assert short_name("/照片/" + "照" * 40, 20).startswith("…")
    assert rate_text(None) == "?/s" and rate_text(1.5 * MiB) == "1.5 MiB/s"


def test_quiet_json_and_no_terminal_show_nothing() -> None:
    assert not ProgressBar(CliState(quiet=True), "upload", 1).enabled
    assert not ProgressBar(CliState(as_json=True), "upload", 1).enabled
    assert not ProgressBar(CliState(), "upload", 1).enabled  # pytest's stderr: no terminal
