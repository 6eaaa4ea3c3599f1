"""Where a running sync says how it is, for ``minidropbox status``.

Each running sync writes ``LOCAL_DIR/.minidropbox/status.json`` (atomically, on every change
of state: idle, syncing, waiting, paused; the last error; the files it cannot sync; how many
actions its round has) and registers its folder in
``$XDG_CONFIG_HOME/minidropbox/syncs/`` while it runs. ``minidropbox status`` reads the
registry, asks each folder's lock whether its sync still runs (``folder_lock.holder_pid``: a
sync that was killed holds no lock), and shows the status file.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from minidropbox.client.config import config_dir
from minidropbox.client.sync.folder_lock import holder_pid
from minidropbox.client.sync.state import STATE_DIR
from minidropbox.client.sync.status import SyncState

STATUS_FILE = f"{STATE_DIR}/status.json"
LOG_FILE = f"{STATE_DIR}/sync.log"  # where ``sync --daemon`` writes its output
MAX_LISTED_SKIPS = 1000  # skipped files kept in the status file (the log has them all)


def registry_dir() -> Path:
    return config_dir() / "syncs"


def _entry(root: Path) -> Path:
    return registry_dir() / (hashlib.sha256(str(root).encode()).hexdigest()[:16] + ".json")


def write_json(path: Path, body: dict[str, Any]) -> None:
    """Atomically: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(body, indent=1) + "\n")
    os.replace(tmp, path)


class StatusFile:
    """The running sync's side: register, write each state change, unregister."""

    def __init__(self, root: Path, server: str, remote_root: str) -> None:
        self.root = root
        self.info = {"root": str(root), "server": server, "remote": remote_root,
                     "pid": os.getpid(), "started_at": time.time()}
        self.lock = threading.Lock()  # the engine's threads report too

    def register(self) -> None:
        registry_dir().mkdir(parents=True, exist_ok=True, mode=0o700)
        write_json(_entry(self.root), {"root": str(self.root)})
        self.write(SyncState())

    def write(self, state: SyncState) -> None:
        body = {**self.info, **asdict(state), "updated_at": time.time()}
        body["skipped_count"] = len(state.skipped)
        body["skipped"] = state.skipped[:MAX_LISTED_SKIPS]
        try:
            with self.lock:
                write_json(self.root / STATUS_FILE, body)
        except OSError:
            pass  # the folder went away: the sync stops on its own rail; status is best effort

    def unregister(self, final: SyncState) -> None:
        final.state = "stopped"
        self.write(final)
        _entry(self.root).unlink(missing_ok=True)


@dataclass(frozen=True)
class RunningSync:
    root: str
    running: bool
    pid: int | None
    status: dict[str, Any]  # the folder's status.json ({} if unreadable)


def running_syncs() -> list[RunningSync]:
    """Every registered sync folder, running or not; entries of syncs that no longer run
    are reported once and then forgotten."""
    out: list[RunningSync] = []
    folder = registry_dir()
    if not folder.is_dir():
        return out
    for entry in sorted(folder.glob("*.json")):
        try:
            root = Path(json.loads(entry.read_text())["root"])
        except (OSError, ValueError, KeyError, TypeError):
            entry.unlink(missing_ok=True)
            continue
        try:
            status = json.loads((root / STATUS_FILE).read_text())
        except (OSError, ValueError):
            status = {}
        pid = holder_pid(root)
        out.append(RunningSync(str(root), pid is not None, pid, status))
        if pid is None:
            entry.unlink(missing_ok=True)
    return out
