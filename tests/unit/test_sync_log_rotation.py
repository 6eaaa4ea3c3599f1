"""The background sync's log stays bounded: more than the limit written through the real
output path (action lines, status lines, logging, raw writes to descriptor 2) leaves
``sync.log`` plus ``BACKUPS`` old files, each near ``MAX_BYTES``, every line whole."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from minidropbox.client.sync.log_file import BACKUPS, MAX_BYTES, RotatingLog, rotate_if_full

# A daemon's process: its output sent to the log, then about six logs' worth of lines through
# each way a sync writes. A child process, because the descriptors 1 and 2 are redirected.
DAEMON = r"""
import logging, os, sys
from pathlib import Path
from minidropbox.client.sync.log_file import MAX_BYTES, send_output_to
from minidropbox.client.sync.status import Status
from minidropbox.logs import configure_logging

send_output_to(Path(sys.argv[1]))
configure_logging(level=logging.INFO)
status = Status()
line = "x" * 1000
n = 0
while n * 1024 < 6 * MAX_BYTES:
    status.action(f"uploaded /folder/file-{n}.txt {line}")
    status.show(f"syncing {n} files")
    logging.getLogger("minidropbox.sync").info("round %d %s", n, line)
    if n % 100 == 0:
        print(f"printed {n}", file=sys.stderr)
        os.write(2, f"raw write to fd 2 number {n}\n".encode())
    n += 1
status.action("the last line")
"""

LINE = re.compile(r"^(\d\d:\d\d:\d\d |\d{4}-\d\d-\d\d |printed |raw write )")


def test_the_log_is_rotated_by_size_and_keeps_whole_lines(tmp_path: Path) -> None:
    log = tmp_path / "sync.log"
    proc = subprocess.run([sys.executable, "-c", DAEMON, str(log)], capture_output=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"" and proc.stderr == b""  # everything went to the log
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["sync.log"] + [f"sync.log.{n}"
                                                     for n in range(1, BACKUPS + 1)]
    for f in files:
        size = f.stat().st_size
        assert size <= MAX_BYTES + 4096, (f.name, size)
        text = f.read_text()
        assert text.endswith("\n")
        bad = [x for x in text.splitlines() if not LINE.match(x)]
        assert not bad, (f.name, bad[:3])
    for f in files[1:]:
        assert f.stat().st_size > MAX_BYTES * 0.9, f.name  # rotated when full, not before
    assert log.read_text().splitlines()[-1].endswith("the last line")
    newest_first = [int(m) for f in files
                    for m in re.findall(r"file-(\d+)", f.read_text()[:2000])[:1]]
    assert newest_first == sorted(newest_first, reverse=True)


def test_a_full_log_is_set_aside_before_a_daemon_starts(tmp_path: Path) -> None:
    log = tmp_path / "sync.log"
    log.write_bytes(b"old\n" * 10)
    rotate_if_full(log, max_bytes=100)
    assert log.read_bytes() == b"old\n" * 10  # not full yet
    log.write_bytes(b"old\n" * 30)
    rotate_if_full(log, max_bytes=100, backups=2)
    assert not log.exists() and (tmp_path / "sync.log.1").read_bytes() == b"old\n" * 30


def test_a_line_that_never_ends_is_cut_at_twice_the_limit(tmp_path: Path) -> None:
    writer = RotatingLog(tmp_path / "sync.log", max_bytes=100, backups=1)
    for _ in range(50):
        writer.write(b"no newline ")
    writer.close()
    assert (tmp_path / "sync.log.1").stat().st_size < 2 * 100 + 20
    assert (tmp_path / "sync.log").stat().st_size < 2 * 100 + 20
    assert not (tmp_path / "sync.log.2").exists()
