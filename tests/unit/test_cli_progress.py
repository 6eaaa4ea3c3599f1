"""The transfer progress display: files done of all, the current file, bytes, rate, ETA."""

from __future__ import annotations

import io

from rich.console import Console

from minidropbox.cli.progress import ProgressBar, files_text, short_name
from minidropbox.cli.state import CliState
from minidropbox.client.batch import TransferStats

MiB = 1024 * 1024


def _render(bar: ProgressBar) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200, color_system=None)
    console.print(bar.progress.make_tasks_table(bar.progress.tasks))
    return out.getvalue()


def test_many_files_show_count_name_bytes() -> None:
    stats = TransferStats()
    bar = ProgressBar(CliState(), "download", 1000 * MiB, files_total=1000,
                      files_done=lambda: stats.files, current=lambda: stats.current)
    stats.add(files=312)
    stats.started("/Photos/2024/holiday/IMG_0312.jpg")
    bar(312 * MiB)
    line = _render(bar)
    assert "312/1,000 files" in line
    assert "IMG_0312.jpg" in line
    assert "312.0/1,000.0 MiB" in line


def test_one_file_shows_no_count() -> None:
    bar = ProgressBar(CliState(), "upload", 10, files_total=1, files_done=lambda: 0)
    assert "files" not in _render(bar)


def test_formatting() -> None:
    assert files_text(0, 1) == "0/1 file"
    assert files_text(1234, 5678) == "1,234/5,678 files"
    assert short_name("/a/" + "x" * 100 + "/name.txt").endswith("/name.txt")
    assert len(short_name("/a/" + "x" * 100 + "/name.txt")) == 32
    assert short_name("/bad\nname") == "'/bad\\nname'"


def test_quiet_and_json_show_nothing() -> None:
    assert not ProgressBar(CliState(quiet=True), "upload", 1).enabled
    assert not ProgressBar(CliState(as_json=True), "upload", 1).enabled
