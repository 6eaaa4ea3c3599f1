"""One sync per folder, and no sync folder inside another.

``SyncFolderLock`` holds an exclusive ``flock`` on ``LOCAL_DIR/.minidropbox/lock`` for as long
as a sync runs: a second ``minidropbox sync`` on the same folder (from any terminal, or a
service) stops at once with ``SyncFolderBusy`` naming the holder's pid. The kernel drops the
lock when its process dies, however it dies, so a crash never leaves the folder locked.

``check_not_nested`` refuses a folder that is inside a synced folder (the outer sync would
upload the inner one's files a second time) or that holds one, found by its
``.minidropbox/state.db``. Both directions are checked by whichever sync starts second.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from minidropbox.client.sync.errors import NestedSyncFolder, SyncFolderBusy
from minidropbox.client.sync.state import STATE_DIR, STATE_FILE

LOCK_FILE = f"{STATE_DIR}/lock"
MAX_NESTED_SCAN = 1_000_000  # folders looked at for a nested sync folder, at most


class SyncFolderLock:
    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_FILE
        self.fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise SyncFolderBusy(f"{self.path.parent.parent} is already being synced (pid "
                                 f"{holder}); `minidropbox status` shows it.") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None


def holder_pid(root: Path) -> int | None:
    """The pid of the sync running on ``root``, or None if none runs (its lock is free)."""
    try:
        fd = os.open(root / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 64).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def check_not_nested(root: Path) -> None:
    """``NestedSyncFolder`` if ``root`` is inside a sync folder or holds one."""
    root = root.resolve()
    for parent in root.parents:
        if (parent / STATE_FILE).is_file():
            raise NestedSyncFolder(f"{root} is inside {parent}, which is synced already; "
                                   "sync the outer folder, or choose a folder outside it.")
    for seen, (folder, dirs, _files) in enumerate(os.walk(root), start=1):
        here = Path(folder)
        if here != root and STATE_DIR in dirs and (here / STATE_FILE).is_file():
            raise NestedSyncFolder(
                f"{root} holds {here}, which is a sync folder itself (it has {STATE_DIR}/); "
                f"stop that sync and remove {here / STATE_DIR} first, or sync another folder.")
        dirs[:] = [d for d in dirs if d != STATE_DIR]
        if seen >= MAX_NESTED_SCAN:
            return  # a tree this large is checked by the scanner's ignore rule alone
