"""Fetching what a round downloads into verified temp files in ``TEMP_DIR``: small files
many to a request (``POST /files/contents``), the rest one by one, in worker threads. The
executor then makes each group known to the state DB and renames it into place
(``Executor._downloads``); nothing here touches the sync folder outside ``TEMP_DIR``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING

from minidropbox.client.batch import TransferStats
from minidropbox.client.download import (
    BATCH_FILE_BYTES,
    Wanted,
    fetch_small_to_temp,
    fetch_to_temp,
    small_batches,
)
from minidropbox.client.interruptible import result_of
from minidropbox.client.localfolder import LocalFolder
from minidropbox.client.remote import Remote
from minidropbox.client.sync.localfs import TEMP_DIR, make_folder
from minidropbox.client.sync.remote import RemoteSide, RemoteTree
from minidropbox.client.sync.scanner import stat_of
from minidropbox.client.sync.state import LocalStat
from minidropbox.core import errors
from minidropbox.core.paths import path_key
from minidropbox.core.reconcile import Action

if TYPE_CHECKING:
    from minidropbox.client.sync.executor import Outcome

log = logging.getLogger("minidropbox.sync")
# One batch of small downloads: its actions, and per file a temp file or an error (or the
# error that failed the whole request).
Requested = tuple[list[Action], list[str | errors.MiniDropboxError | OSError]
                  | errors.MiniDropboxError]
# Errors that end the whole run rather than one action.
FATAL = (errors.Unauthorized, errors.Forbidden)
Fetched = tuple[Action, str, LocalStat]  # an action, its temp file and the temp file's stat


class Fetcher:
    def __init__(self, folder: LocalFolder, server: Remote, remote: RemoteSide,
                 tree: RemoteTree, report: Callable[[str], None], transfer_workers: int,
                 ) -> None:
        """``tree``: the round's server tree (the mtimes given to downloads);
        ``transfer_workers``: with 1 everything happens in this thread, in order."""
        self.folder, self.server, self.remote, self.tree = folder, server, remote, tree
        self.report, self.transfer_workers = report, transfer_workers

    def fetch_rest(self, rest: Sequence[Action], out: Outcome,
                    ) -> list[Fetched]:
        """Files fetched one by one (big ones, or any under ``--bwlimit``)."""
        if self.transfer_workers <= 1:
            return [(act, *got) for act in rest
                    if (got := self._fetched(act, partial(self._fetch_one, act, out), out))]
        with ThreadPoolExecutor(self.transfer_workers, thread_name_prefix="sync-get") as pool:
            futures = [(act, pool.submit(self._fetch_one, act, out)) for act in rest]
            return [(act, *got) for act, future in futures
                    if (got := self._fetched(act, partial(result_of, future), out))]

    def batchable(self, act: Action) -> bool:
        """A small file of known size and hash: fetched many to a request. (Not under
        ``--bwlimit``, which paces each download's blocks.)"""
        rem = act.remote
        return (self.server.bandwidth is None and rem is not None
                and rem.size is not None and rem.size <= BATCH_FILE_BYTES
                and rem.hash is not None and rem.version is not None)

    def request_small(self, actions: list[Action], stats: TransferStats,
                       ) -> list[Requested]:
        """Small files, many to a request (``fetch_small_to_temp``): per batch its actions
        and the answers, or the error that failed the whole request. Reports nothing (it
        may run ahead, in another thread): ``take_small`` does."""
        if not actions:
            return []
        make_folder(self.folder, TEMP_DIR)
        by_path = {self.remote.to_remote(act.path): act for act in actions}
        wanted = []
        for path, act in by_path.items():
            rem = act.remote
            assert rem is not None and rem.version is not None and rem.size is not None
            wanted.append(Wanted(path, rem.version, rem.size, rem.hash or "",
                                 self.tree.modified.get(path_key(act.path))))
        requested: list[Requested] = []
        for batch in small_batches(wanted):
            acts = [by_path[w.path] for w in batch]
            try:
                requested.append((acts, fetch_small_to_temp(self.server, batch, self.folder,
                                                             TEMP_DIR, stats)))
            except errors.MiniDropboxError as exc:
                requested.append((acts, exc))
        return requested

    def take_small(self, requested: list[Requested], out: Outcome,
                    ) -> list[Fetched]:
        """The temp files ``request_small`` fetched; a batch the server did not answer
        whole (an older server, a failure) is fetched one by one."""
        fetched: list[Fetched] = []
        for acts, results in requested:
            if isinstance(results, FATAL):
                raise results
            if isinstance(results, errors.MiniDropboxError):
                log.info("fetching %d small files one by one: %s", len(acts), results)
                fetched += self.fetch_rest(acts, out)
                continue
            for act, result in zip(acts, results, strict=True):
                if isinstance(result, str):
                    fetched.append((act, result, stat_of(self.folder.info(result))))
                else:
                    self.failed(act, result, out)
        return fetched

    def _fetched(self, act: Action, result: Callable[[], tuple[str, LocalStat]],
                 out: Outcome) -> tuple[str, LocalStat] | None:
        """The fetched temp file and its stat, or None (counted) if it could not be had."""
        try:
            return result()
        except (errors.MiniDropboxError, OSError) as exc:
            self.failed(act, exc, out)
            return None

    def failed(self, act: Action, exc: errors.MiniDropboxError | OSError,
                      out: Outcome) -> None:
        if isinstance(exc, FATAL):
            raise exc
        if isinstance(exc, errors.NotFound):
            out.skipped += 1  # gone from the server meanwhile
            return
        message = exc.message if isinstance(exc, errors.MiniDropboxError) else str(exc)
        out.failed.append(f"download {act.path}: {message}")
        self.report(f"failed download {act.path}: {message}")

    def _fetch_one(self, act: Action, out: Outcome) -> tuple[str, LocalStat]:
        """Stream the planned version into a verified temp file in ``TEMP_DIR``."""
        rem = act.remote
        assert rem is not None and rem.version is not None
        # Only the temp folder is made here. The target's folder was made by the plan (a
        # ``MKDIR_LOCAL`` runs before any download); making it again here would bring back
        # a folder the user moved or deleted while the downloads were in flight.
        make_folder(self.folder, TEMP_DIR)
        tmp = fetch_to_temp(self.server, self.remote.to_remote(act.path), self.folder, TEMP_DIR,
                            version=rem.version, expect_size=rem.size, expect_hash=rem.hash,
                            mtime=self.tree.modified.get(path_key(act.path)), stats=out.stats)
        return tmp, stat_of(self.folder.info(tmp))
