"""Events that wake the sync loop: local file events (watchdog) and server notifications.

Both only *wake* the loop; what changed is always found by a reconcile, so a missed or
repeated event costs at most a round, never a change. Local events are debounced: the loop
waits until the folder has been quiet for ``DEBOUNCE`` seconds (a few seconds at most), and
the scanner leaves files that are still being written for a later round.

The local watcher also remembers, for a short while, which files were written and whether
their writer has closed them since (inotify's close-after-write, watchdog's ``closed``
event): a closed file may be uploaded after a shorter settle time than one still open (see
``scanner``). A file it knows nothing about counts as still open.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from minidropbox.client.localpaths import TMP_PREFIX
from minidropbox.client.remote import Remote
from minidropbox.client.sync.state import STATE_DIR
from minidropbox.core import errors
from minidropbox.core.backoff import Backoff

log = logging.getLogger("minidropbox.sync")
DEBOUNCE = 0.1
WRITES_REMEMBERED = 30.0  # seconds: longer than any settle time, so pruning loses nothing
DEBOUNCE_MAX = 2.0
POLL_INTERVAL = 1.0  # servers without notifications: how often to look anyway
# The events that can wake the loop or say a file was closed. Asked of the kernel by these
# alone (watchdog builds the inotify mask from them): every file sync reads for hashing or
# uploading would otherwise come back as "opened" and "closed_no_write", and every name made,
# removed or renamed as a "modified" of its folder too, each parsed and dispatched in Python
# (about 0.6 ms of CPU per downloaded file went to such events).
WAKING_EVENTS = [FileCreatedEvent, FileModifiedEvent, FileClosedEvent, FileMovedEvent,
                 FileDeletedEvent, DirCreatedEvent, DirMovedEvent, DirDeletedEvent]


class LocalWatcher(FileSystemEventHandler):
    """Wakes the loop on any change under the root except sync's own state and temp files."""

    def __init__(self, root: Path, wake: threading.Event) -> None:
        self.root = str(root)
        self.wake = wake
        self.last_event = 0.0
        self.observer = Observer()
        self.lock = threading.Lock()
        self.writes: dict[str, tuple[bool, float]] = {}  # path -> (closed since, when)
        self.pruned = 0.0

    def start(self) -> None:
        self.observer.schedule(self, self.root, recursive=True, event_filter=WAKING_EVENTS)
        self.observer.daemon = True
        self.observer.start()

    def stop(self) -> None:
        self.observer.stop()
        self.observer.join(5)

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):  # never asked for; a read
            return                                             # must not wake the loop
        paths = [event.src_path, getattr(event, "dest_path", "")]
        if all(self._ours(p) for p in paths if p):
            return
        if not event.is_directory:
            self._note_write(event.event_type, *(os.fsdecode(p) for p in paths))
        self.last_event = time.monotonic()
        self.wake.set()

    def _note_write(self, kind: str, src: str, dest: str) -> None:
        now = time.monotonic()
        with self.lock:
            if kind in ("created", "modified"):
                self.writes[src] = (False, now)
            elif kind == "closed":
                self.writes[src] = (True, now)
            elif kind == "moved":
                # An editor's save: written and closed under a temp name, then renamed.
                moved = self.writes.pop(src, None)
                if moved is not None and dest:
                    self.writes[dest] = (moved[0], now)
            elif kind == "deleted":
                self.writes.pop(src, None)
            if now - self.pruned > WRITES_REMEMBERED:
                self.pruned = now
                self.writes = {p: w for p, w in self.writes.items()
                               if now - w[1] < WRITES_REMEMBERED}

    def closed(self, name: str) -> bool:
        """Whether the last writer of ``name`` (in the sync folder) closed it, with no write
        since (as far as the events seen so far tell; they may lag the disk, never lead it)."""
        with self.lock:
            write = self.writes.get(os.path.join(self.root, name))
        return write is not None and write[0]

    def _ours(self, path: str | bytes) -> bool:
        text = path.decode(errors="replace") if isinstance(path, bytes) else path
        rel = text[len(self.root):].lstrip("/")
        return (rel == STATE_DIR or rel.startswith(STATE_DIR + "/")
                or text.rsplit("/", 1)[-1].startswith(TMP_PREFIX))

    def settle(self, stop: threading.Event) -> None:
        """Wait until no local event came for ``DEBOUNCE`` s (at most ``DEBOUNCE_MAX``)."""
        deadline = time.monotonic() + DEBOUNCE_MAX
        while not stop.is_set() and time.monotonic() < deadline:
            quiet = time.monotonic() - self.last_event
            if quiet >= DEBOUNCE:
                return
            stop.wait(DEBOUNCE - quiet)


class RemoteWatcher:
    """Wakes the loop whenever the server's journal moves past ``current_cursor()``.

    Uses ``minidropbox.client.changes.notifications`` (WebSocket, long-poll fallback,
    reconnect with backoff). A server without a change feed is polled instead.
    """

    def __init__(self, server: Remote, wake: threading.Event,
                 current_cursor: Callable[[], str | None], stop: threading.Event) -> None:
        self.server = server
        self.wake = wake
        self.current_cursor = current_cursor
        self.stop = stop
        self.thread = threading.Thread(target=self._run, name="sync-notify", daemon=True)
        self.failure: BaseException | None = None

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        backoff = Backoff()
        while not self.stop.is_set():
            try:
                from minidropbox.client.changes import notifications

                for cursor in notifications(self.server, stop=self.stop):
                    if cursor != self.current_cursor():
                        self.wake.set()
                return
            except errors.NotFound:
                break  # no change feed on this server
            except errors.Unauthorized as exc:
                self.failure = exc
                self.wake.set()
                return
            except Exception as exc:  # keep waking the loop whatever went wrong here
                delay = backoff.next_delay()
                log.warning("notifications failed (%s); retrying in %.1f s", exc, delay)
                self.stop.wait(delay)
        while not self.stop.wait(POLL_INTERVAL):
            self.wake.set()
