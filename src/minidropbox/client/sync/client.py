"""The sync client, composed once: the one place that builds the server facade, the local
folder, the state DB, the engine and both watchers, and wires them by constructor.

    SyncClient
    ├── Remote(ApiClient)           the account on its server (shared by the engine's threads)
    ├── RealFolder(root)            the disk, behind the LocalFolder interface
    ├── LocalWatcher(root, wake)    watchdog events; tells the scanner which files were closed
    ├── SyncEngine(remote, folder, root/.minidropbox/state.db, closed=LocalWatcher.closed)
    └── RemoteWatcher(remote, wake, engine.saved_cursor)    notifications from the server

``--once`` builds no watchers. Tests build ``SyncEngine`` themselves with other folders.
"""

from __future__ import annotations

import threading

from minidropbox.client.api import ApiClient
from minidropbox.client.config import Credentials
from minidropbox.client.localfolder import RealFolder
from minidropbox.client.remote import Remote
from minidropbox.client.sync.daemon import run_forever, run_once
from minidropbox.client.sync.engine import SyncEngine, SyncOptions, SyncResult
from minidropbox.client.sync.state import STATE_FILE
from minidropbox.client.sync.status import Status
from minidropbox.client.sync.watcher import LocalWatcher, RemoteWatcher


class SyncClient:
    def __init__(self, credentials: Credentials, options: SyncOptions, status: Status, *,
                 watch: bool) -> None:
        """``watch``: build the watchers for ``run_forever`` (not needed by ``run_once``)."""
        self.server = Remote(ApiClient(credentials.server, credentials))
        self.folder = RealFolder(options.root)
        self.stop, self.wake = threading.Event(), threading.Event()
        self.local_watcher = LocalWatcher(options.root, self.wake) if watch else None
        self.engine = SyncEngine(
            self.server, self.folder, options.root / STATE_FILE, options, status,
            closed=self.local_watcher.closed if self.local_watcher is not None else None)
        self.remote_watcher = (RemoteWatcher(self.server, self.wake, self.engine.saved_cursor,
                                             self.stop) if watch else None)

    def open(self) -> None:
        """Check the folder and the account it is synced with; open the state DB."""
        self.engine.open()

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

    def close(self) -> None:
        self.engine.close()
        self.server.close()
