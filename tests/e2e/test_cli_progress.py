"""The progress display of ``put`` and ``get`` of a folder, as a user at a terminal sees it: the
real ``minidropbox`` on a pseudo-terminal (80 columns) against a real cluster, paced by
``MINIDROPBOX_BWLIMIT`` so the transfer lasts a few seconds however fast the machine is.

On a terminal the line shows files done of all, bytes, rate, ETA and the current file; in a
pipe, or with ``--json`` or ``--quiet``, nothing of it is printed.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_cli_files import Cli
from tests.harness import BIN, TestCluster

KiB = 1024
FILES = 40
FILE_BYTES = 64 * KiB  # 2.5 MiB in all: 2.5 s at the pace below, whatever the machine
PACE = "1M"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
RATE = re.compile(r"\d+(\.\d+)? (B|KiB|MiB|GiB)/s")
ETA = re.compile(r"\d+:\d\d:\d\d")
# Bytes done of all, as rich's DownloadColumn draws them ("1.2/2.5 MiB", "512.0 KiB/2.5 MiB").
BYTES = re.compile(r"\d+(\.\d+)?( (B|KiB|MiB|GiB))?/\d+(\.\d+)? (B|KiB|MiB|GiB)\b(?!/s)")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    with TestCluster(tmp_path_factory.mktemp("progress-cluster")) as shared:
        yield shared


@pytest.fixture(scope="module")
def user(cluster: TestCluster, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """One account holding /many: FILES distinct files (uploaded without a terminal)."""
    tmp = tmp_path_factory.mktemp("progress-user")
    cli = Cli(cluster.url, tmp / "home").signup_and_login("pat")
    src = tmp / "many"
    src.mkdir()
    for i in range(FILES):
        (src / f"photo-{i:03}.jpg").write_bytes(os.urandom(FILE_BYTES))
    cli.run("put", src, "/")
    return cli


def on_terminal(cli: Cli, *args: str | Path, cwd: Path) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdin, stdout and stderr; return its exit code
    and everything it drew, escape sequences removed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in cli.env.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env.update({"TERM": "xterm-256color", "MINIDROPBOX_BWLIMIT": PACE})
    proc = subprocess.Popen([str(BIN), *map(str, args)], stdin=slave, stdout=slave,
                            stderr=slave, env=env, cwd=cwd, start_new_session=True)
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=120)
        reader.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return code, ANSI.sub("", b"".join(chunks).decode(errors="replace"))


def progress_lines(screen: str) -> list[str]:
    """The redrawn progress lines (each redraw starts after a carriage return or newline)."""
    return [line for line in re.split(r"[\r\n]+", screen) if f"/{FILES} files" in line]


def check_progress(screen: str, verb: str) -> None:
    lines = progress_lines(screen)
    assert lines, f"no progress line on the terminal:\n{screen!r}"
    for line in lines:
        assert line.startswith(verb), line
        assert len(line) <= 80, f"wider than the terminal: {line!r}"
    moving = [line for line in lines
              if re.search(rf"\b([1-9]\d*)/{FILES} files", line) and RATE.search(line)
              and ETA.search(line) and "photo-0" in line and BYTES.search(line)]
    assert moving, "no line shows files done, bytes, rate, ETA and the current file:\n" + \
        "\n".join(lines)
    counts = [int(m.group(1)) for line in lines
              if (m := re.search(rf"(\d+)/{FILES} files", line))]
    assert counts == sorted(counts) and len(set(counts)) > 2, counts  # it moves, forwards


def test_get_of_a_folder_shows_progress_on_a_terminal(user: Cli, tmp_path: Path) -> None:
    code, screen = on_terminal(user, "get", "/many", tmp_path / "out", cwd=tmp_path)
    assert code == 0, screen
    check_progress(screen, "download")
    assert f"Downloaded {FILES} files" in screen
    assert len(list((tmp_path / "out").iterdir())) == FILES


def test_put_of_a_folder_shows_progress_on_a_terminal(user: Cli, tmp_path: Path) -> None:
    src = tmp_path / "many"
    src.mkdir()
    for i in range(FILES):
        (src / f"photo-{i:03}.jpg").write_bytes(os.urandom(FILE_BYTES))
    code, screen = on_terminal(user, "put", src, "/up", cwd=tmp_path)
    assert code == 0, screen
    check_progress(screen, "upload")
    assert f"Uploaded {FILES} files" in screen


@pytest.mark.parametrize("option", ["--json", "--quiet"])
def test_json_and_quiet_show_no_progress_on_a_terminal(user: Cli, tmp_path: Path,
                                                       option: str) -> None:
    code, screen = on_terminal(user, option, "get", "/many", tmp_path / "out", cwd=tmp_path)
    assert code == 0, screen
    # A terminal turns each newline into "\r\n"; a redrawn line is a "\r" alone.
    assert not progress_lines(screen) and not re.search("\r(?!\n)", screen), screen


def test_a_pipe_gets_no_progress(user: Cli, tmp_path: Path) -> None:
    env = {**user.env, "MINIDROPBOX_BWLIMIT": PACE, "TERM": "xterm-256color"}
    env.pop("COLUMNS")
    proc = subprocess.run([str(BIN), "get", "/many", str(tmp_path / "out")], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr  # not a character of the progress display
    assert proc.stdout == f"Downloaded {FILES} files (2.5 MiB).\n"
