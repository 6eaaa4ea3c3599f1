"""The local watcher on a real folder (inotify): what wakes the sync loop, what it is not even
told about, and which files it knows were closed after writing."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from watchdog.events import FileSystemEvent

from minidropbox.client.localpaths import TMP_PREFIX
from minidropbox.client.sync.state import STATE_DIR
from minidropbox.client.sync.watcher import LocalWatcher

QUIET = 0.5  # seconds an event would take at most to arrive on an idle machine


class CountingWatcher(LocalWatcher):
    def __init__(self, root: Path, wake: threading.Event) -> None:
        super().__init__(root, wake)
        self.seen: list[str] = []

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.seen.append(event.event_type)
        super().on_any_event(event)


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Path, CountingWatcher, threading.Event]]:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "old.txt").write_bytes(b"old")
    (tmp_path / STATE_DIR).mkdir()
    wake = threading.Event()
    watcher = CountingWatcher(tmp_path, wake)
    watcher.start()
    time.sleep(0.2)  # the watches are in place
    try:
        yield tmp_path, watcher, wake
    finally:
        watcher.stop()


def _settled(watcher: CountingWatcher) -> None:
    before = -1
    while before != len(watcher.seen):
        before = len(watcher.seen)
        time.sleep(QUIET)


def test_reading_files_is_not_reported_at_all(watched: tuple[Path, CountingWatcher,
                                                              threading.Event]) -> None:
    """Sync reads every file it hashes or uploads: the kernel is not asked to report opens
    or closes without a write, so those reads cost the watcher nothing and wake nobody."""
    root, watcher, wake = watched
    for _ in range(20):
        assert (root / "docs" / "old.txt").read_bytes() == b"old"
    os.listdir(root / "docs")
    _settled(watcher)
    assert watcher.seen == [] and not wake.is_set()


def test_a_write_wakes_and_its_close_is_known(watched: tuple[Path, CountingWatcher,
                                                             threading.Event]) -> None:
    root, watcher, wake = watched
    with open(root / "docs" / "new.txt", "wb") as fh:
        fh.write(b"new")
        fh.flush()
        assert wake.wait(10)
    _settled(watcher)
    assert watcher.closed("docs/new.txt") and not watcher.closed("docs/old.txt")
    # An editor's save: written under a temp name, then renamed over the file.
    wake.clear()
    (root / "docs" / "save.tmp").write_bytes(b"saved")
    os.replace(root / "docs" / "save.tmp", root / "docs" / "old.txt")
    assert wake.wait(10)
    _settled(watcher)
    assert watcher.closed("docs/old.txt")
    # A folder made, renamed and removed wakes too.
    for change in (lambda: (root / "made").mkdir(),
                   lambda: (root / "made").rename(root / "moved"),
                   lambda: (root / "moved").rmdir()):
        wake.clear()
        change()
        assert wake.wait(10)


def test_sync_own_files_do_not_wake(watched: tuple[Path, CountingWatcher,
                                                  threading.Event]) -> None:
    root, watcher, wake = watched
    (root / "docs" / f"{TMP_PREFIX}download").write_bytes(b"partial")
    (root / STATE_DIR / "state.db").write_bytes(b"rows")
    os.utime(root / STATE_DIR / "state.db", ns=(1, 1))
    _settled(watcher)
    assert watcher.seen and not wake.is_set()
