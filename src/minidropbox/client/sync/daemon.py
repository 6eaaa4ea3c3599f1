"""The two ways to run a sync: once (``--once``) and until stopped.

The running loop syncs, shows "idle", then sleeps until the local watcher or the server's
notifications wake it (or a periodic check is due). A server that cannot be reached, or any
other failed round, is retried with backoff; a mass deletion pauses the run (nothing
happens until the files are back or the deletion is confirmed); the other rails (missing
root, wrong account) and a lost session end the run with their error.
"""

from __future__ import annotations

import threading
import time

from minidropbox.client.sync.engine import SyncEngine, SyncResult
from minidropbox.client.sync.errors import (
    FilesSkipped,
    MassDeleteRefused,
    NotConverged,
    SyncError,
)
from minidropbox.client.sync.watcher import LocalWatcher, RemoteWatcher
from minidropbox.core import errors
from minidropbox.core.backoff import Backoff

PERIODIC = 60.0  # full rescan even without events (events can be lost, e.g. on overflow)
ONCE_SETTLE_LIMIT = 60.0  # --once waits this long at most for files still being written
# Rails and a lost session end the run; anything else is retried with backoff.
FATAL = (SyncError, errors.Unauthorized, errors.Forbidden)


def run_once(engine: SyncEngine) -> SyncResult:
    """Reconcile until both sides agree; ``NotConverged`` if they do not."""
    deadline = time.monotonic() + ONCE_SETTLE_LIMIT
    result = engine.sync()
    while not result.done and result.recheck is not None and time.monotonic() < deadline:
        time.sleep(result.recheck)
        result = engine.sync()
    if result.done:
        if result.skipped:
            raise FilesSkipped(f"{len(result.skipped)} file(s) cannot be synced (each is "
                               "listed above with the reason); everything else is in sync.")
        return result
    problems = [*result.failed, *(f"{p}: cannot be read" for p in result.unreadable)]
    if result.recheck is not None:
        problems.append("some files kept changing while they were being synced")
    for line in problems:
        engine.status.action(f"not synced: {line}")
    raise NotConverged(f"{len(problems) or 'Some'} change(s) could not be synced; "
                       "run again to retry.")


def run_forever(engine: SyncEngine, local: LocalWatcher, remote: RemoteWatcher,
                stop: threading.Event, wake: threading.Event) -> None:
    """Sync, then wait for the watchers' events, until ``stop`` is set (set ``wake`` too to
    end a wait). The watchers set ``wake``; this starts them, and stops them on the way out."""
    local.start()
    remote.start()
    backoff = Backoff(base=1.0, cap=60.0)
    paused: str | None = None  # the mass-delete refusal already reported
    try:
        while not stop.is_set():
            wake.clear()
            try:
                result = engine.sync()
            except MassDeleteRefused as exc:
                # Pause rather than stop: nothing else may happen before the user decides,
                # but restoring the files (or confirming with --allow-mass-delete in another
                # run) must resume without anyone restarting the service.
                if exc.message != paused:
                    engine.status.action(f"paused: {exc.message}")
                    engine.status.error(exc.message)
                paused = exc.message
                engine.status.show("paused: too many deletions (see the log); waiting")
                if wake.wait(PERIODIC) and not stop.is_set():
                    local.settle(stop)
                continue
            except FATAL:
                raise
            except (errors.MiniDropboxError, OSError) as exc:
                # A server restarting, a disk hiccup: wait and try again; nothing is lost by
                # waiting, the next round sees everything that happened meanwhile.
                delay = backoff.next_delay()
                message = exc.message if isinstance(exc, errors.MiniDropboxError) else str(exc)
                engine.status.error(message)
                engine.status.show(f"waiting ({message}); retrying in {delay:.0f} s")
                wake.wait(delay)
                continue
            paused = None
            if result.done:
                backoff.reset()
                engine.status.idle()
                timeout = PERIODIC
            elif result.recheck is not None:
                timeout = result.recheck
            else:
                timeout = backoff.next_delay()
                engine.status.show(f"{len(result.failed) + len(result.unreadable)} problem(s);"
                                   f" retrying in {timeout:.0f} s")
            if wake.wait(timeout) and not stop.is_set():
                local.settle(stop)
            if remote.failure is not None:
                raise remote.failure
    finally:
        stop.set()
        local.stop()
