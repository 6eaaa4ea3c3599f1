"""``minidropbox server backup``: a snapshot at start, then one every interval, then prune.

Reads the API's settings: the database (``MINIDROPBOX_DATA_DIR`` or ``..._DATABASE_URL``),
the nodes (``MINIDROPBOX_NODES`` as ``name=url``; without it, the database's node table) and
the cluster secret (``MINIDROPBOX_CLUSTER_SECRET``, else the data directory's secrets). The
first snapshot waits until the API has created and migrated the database (the service may
start first, or beside an API still migrating): a database at another migration is waited
for, not reported as a failed backup. A failed run is logged and retried sooner; the service
only stops on SIGTERM/SIGINT, abandoning a run in progress, which the next run cleans up.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from minidropbox.backup.errors import BackupCancelled, BackupConfigError
from minidropbox.backup.repository import Repository
from minidropbox.backup.retention import prune
from minidropbox.backup.snapshot import SnapshotOptions, take_snapshot
from minidropbox.core.errors import MiniDropboxError
from minidropbox.core.health import parse_node_spec
from minidropbox.metadata.db import head_revision, schema_revision
from minidropbox.settings import Settings

log = logging.getLogger("minidropbox.backup")

RETRY_AFTER = 15.0  # seconds before retrying a failed run (capped by the interval)
SCHEMA_POLL = 1.0  # seconds between looks at a database the API has not migrated yet
SCHEMA_LOG_EVERY = 60.0  # seconds between "still waiting" lines
THROTTLE_ENV = "MINIDROPBOX_BACKUP_TEST_THROTTLE"  # test-only, see SnapshotOptions.throttle


def cluster_secret(settings: Settings) -> str:
    """The cluster secret from the settings, else from the data dir (never created here)."""
    if settings.cluster_secret:
        return settings.cluster_secret
    # The API's own secrets folder, or the launcher's (``DATA/secrets`` next to ``DATA/api``).
    for folder in (settings.data_dir / "secrets", settings.data_dir.parent / "secrets"):
        path = folder / "cluster_secret"
        if path.is_file():
            return path.read_text().strip()
    raise BackupConfigError("No cluster secret: set MINIDROPBOX_CLUSTER_SECRET (the storage "
                            "nodes refuse requests without it).")


def snapshot_options(settings: Settings) -> SnapshotOptions:
    specs = dict(parse_node_spec(s, i) for i, s in enumerate(settings.nodes))
    return SnapshotOptions(database_url=settings.effective_database_url,
                           cluster_secret=cluster_secret(settings), nodes=specs,
                           node_timeout=max(settings.node_timeout, 10.0),
                           s3_credentials_file=settings.s3_credentials_file,
                           throttle=float(os.environ.get(THROTTLE_ENV, "0") or 0))


class BackupService:
    """The scheduler: ``run`` blocks until ``stop`` is set."""

    def __init__(self, repo_path: Path, settings: Settings, every: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.repo_path = repo_path
        self.settings = settings
        self.every = every
        self.clock = clock
        self.stop = threading.Event()

    def run_once(self) -> None:
        repo = Repository.init(self.repo_path)
        options = snapshot_options(self.settings)
        options.cancel = self.stop
        take_snapshot(repo, options)
        prune(repo, self.settings.backup_keep_last, self.settings.backup_keep_daily,
              self.clock)

    def wait_for_schema(self) -> bool:
        """Wait until the database is at this code's newest migration; False if stopped first."""
        url, head = self.settings.effective_database_url, head_revision()
        said, said_at = "", 0.0
        while not self.stop.is_set():
            try:
                found = schema_revision(url)
                state = f"at migration {found}" if found else "no schema yet"
            except Exception as exc:  # not up yet: the same wait, whatever the driver says
                found, state = None, "unreachable: " + (str(exc).splitlines() or ["?"])[0][:200]
            if found == head:
                if said:
                    log.info("metadata database migrated to %s: backups start", head)
                return True
            if state != said or time.monotonic() - said_at >= SCHEMA_LOG_EVERY:
                log.info("waiting for the API to migrate the metadata database to %s (%s)",
                         head, state)
                said, said_at = state, time.monotonic()
            self.stop.wait(SCHEMA_POLL)
        return False

    def run(self) -> None:
        log.info("backup service: repository %s, a snapshot every %.0f s, keeping the last %d "
                 "and one a day for %d days", self.repo_path, self.every,
                 self.settings.backup_keep_last, self.settings.backup_keep_daily)
        if not self.wait_for_schema():
            log.info("backup service stopped")
            return
        while not self.stop.is_set():
            started = time.monotonic()
            delay = self.every
            try:
                self.run_once()
            except BackupCancelled:
                break
            except MiniDropboxError as exc:
                log.warning("backup failed: %s", exc.message)
                delay = min(self.every, RETRY_AFTER)
            except Exception:
                log.exception("backup failed")
                delay = min(self.every, RETRY_AFTER)
            self.stop.wait(max(delay - (time.monotonic() - started), 0))
        log.info("backup service stopped")

    def install_signal_handlers(self) -> None:
        def on_signal(_sig: int, _frame: FrameType | None) -> None:
            self.stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
