"""The sync client, composed once: the one place that builds the server facade, the local
folder, the state DB, the engine and both watchers, and wires them by constructor.

    SyncClient
    ├── Remote(ApiClient)           the account on its server (shared by the engine's threads)
    ├── RealFolder(root)            the disk, behind the LocalFolder interface
    ├── LocalWatcher(root, wake)    watchdog events; tells the scanner which files were closed
    ├── SyncEngine(remote, folder, root/.minidropbox/state.db, closed=LocalWatcher.closed)
    └── RemoteWatcher(remote, wake, engine.saved_cursor)    notifications from the server

``--once`` builds no watchers. Tests build ``SyncEngine`` themselves with other folders.

Before anything else, ``open`` refuses a folder inside a sync folder or holding one, and
takes the folder's lock (``folder_lock``): one sync per folder. While it runs, the status
goes to ``.minidropbox/status.json`` for ``minidropbox status`` (``running``).
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from minidropbox.client.api import ApiClient
from minidropbox.client.bandwidth import Bandwidth
from minidropbox.client.config import Credentials
from minidropbox.client.localfolder import RealFolder
from minidropbox.client.remote import Remote
from minidropbox.client.sync.daemon import run_forever, run_once
from minidropbox.client.sync.engine import SyncEngine, SyncOptions, SyncResult
from minidropbox.client.sync.folder_lock import SyncFolderLock, check_not_nested
from minidropbox.client.sync.running import StatusFile
from minidropbox.client.sync.state import STATE_FILE
from minidropbox.client.sync.status import Status
from minidropbox.client.sync.watcher import LocalWatcher, RemoteWatcher
from minidropbox.core.reconcile import Plan


class SyncClient:
    def __init__(self, credentials: Credentials, options: SyncOptions, status: Status, *,
                 watch: bool) -> None:
        """``watch``: build the watchers for ``run_forever`` (not needed by ``run_once``)."""
        self.server = Remote(ApiClient(credentials.server, credentials), bandwidth=(
            Bandwidth(options.bwlimit) if options.bwlimit else None))
        self.root = options.root
        self.lock = SyncFolderLock(options.root)
        self.registered = False
        self.status = status
        self.status_file = StatusFile(options.root, credentials.server, options.remote_root)
        self.folder = RealFolder(options.root)
        self.stop, self.wake = threading.Event(), threading.Event()
        self.local_watcher = LocalWatcher(options.root, self.wake) if watch else None
        state_path = options.root / STATE_FILE
        self.scratch: tempfile.TemporaryDirectory[str] | None = None
        if options.dry_run and not state_path.exists():
            # A dry run of a folder never synced leaves no state DB behind.
            self.scratch = tempfile.TemporaryDirectory(prefix="minidropbox-dry-run-")
            state_path = Path(self.scratch.name) / "state.db"
        self.engine = SyncEngine(
            self.server, self.folder, state_path, options, status,
            closed=self.local_watcher.closed if self.local_watcher is not None else None)
        self.remote_watcher = (RemoteWatcher(self.server, self.wake, self.engine.saved_cursor,
                                             self.stop) if watch else None)

    def open(self) -> None:
        """Check the folder (not nested, not synced by another process) and the account it
        is synced with; open the state DB."""
        if self.root.is_dir():  # a missing folder is the engine's rail, with its own message
            check_not_nested(self.root)
            if self.engine.opts.dry_run:
                self.engine.open()  # reads only; a sync running meanwhile is no harm
                return
            self.lock.acquire()
        self.engine.open()
        if self.lock.fd is not None:
            # Registered only once open: a sync that status shows has passed every check.
            self.status_file.register()
            self.registered = True
            self.status.on_change = self.status_file.write

    def run_once(self) -> SyncResult:
        return run_once(self.engine)

    def run_forever(self) -> None:
        """Sync until ``request_stop`` (or a fatal error)."""
        assert self.local_watcher is not None and self.remote_watcher is not None, \
            "built without watch=True"
        run_forever(self.engine, self.local_watcher, self.remote_watcher, self.stop, self.wake)

    def request_stop(self) -> None:
        """End ``run_forever`` after the current step (safe from a signal handler)."""
        self.stop.set()
        self.wake.set()

    def preview(self) -> Plan:
        return self.engine.preview()

    def close(self) -> None:
        self.engine.close()
        self.server.close()
        if self.scratch is not None:
            self.scratch.cleanup()
        if self.registered:
            self.status.on_change = None
            self.status_file.unregister(self.status.state)
            self.registered = False
        self.lock.release()
