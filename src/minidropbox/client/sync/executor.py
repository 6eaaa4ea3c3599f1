"""Carry out a reconcile plan, re-checking each precondition just before acting.

The plan was made from a snapshot; by the time an action runs, a user may have saved a file or
another device may have committed. So every action first checks that what it is about to
replace or delete is still what the planner saw (the local stat from the scan, the server
version), and skips if not: the next round sees the new state and plans again. Skipping is
always safe; acting on a stale picture is how sync clients lose data.

Write ordering: the side effect happens first, the state row after. A crash in between leaves
the row one step behind, which the next round recognises as "both sides agree".

Every disk access goes through the ``LocalFolder`` it is given, so the same code runs against
the disk and, in tests, against an in-memory or a faulty folder.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from minidropbox.client.batch import TransferStats, UploadItem, split_every
from minidropbox.client.interruptible import result_of
from minidropbox.client.localfolder import LocalFolder, join, parent_of
from minidropbox.client.localpaths import ASIDE_PREFIX, RESPELL_PREFIX
from minidropbox.client.remote import Remote
from minidropbox.client.sync.fetching import FATAL, Fetcher, Requested
from minidropbox.client.sync.ignore import IgnoreRules
from minidropbox.client.sync.localfs import (
    ensure_inside,
    local_name,
    make_folder,
    put_back,
)
from minidropbox.client.sync.refusals import Refusals
from minidropbox.client.sync.remote import RemoteSide, RemoteTree
from minidropbox.client.sync.scanner import LocalScan, stat_of, trusted_stat
from minidropbox.client.sync.state import UNKNOWN_STAT, LocalStat, StateDB
from minidropbox.client.upload import LocalFileChanged
from minidropbox.client.upload_many import upload_many
from minidropbox.core import errors
from minidropbox.core.paths import path_key
from minidropbox.core.reconcile import Action, Item, Op, Plan
from minidropbox.core.units import human_bytes

log = logging.getLogger("minidropbox.sync")
TRANSFER_WORKERS = 4  # downloads (and chunk uploads) in flight
DOWNLOAD_GROUP = 256  # downloads fetched, recorded as pending (one commit), then placed
COMMIT_EVERY = 1.0  # seconds between state commits within a round


class Skipped(Exception):
    """The world moved on since the plan was made; the next round will see it."""


@dataclass
class Outcome:
    done: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    stats: TransferStats = field(default_factory=TransferStats)  # downloads
    sent: TransferStats = field(default_factory=TransferStats)  # uploads

    @property
    def moved_bytes(self) -> int:
        return self.sent.bytes_sent + self.stats.bytes_received


Report = Callable[[str], None]


class Executor:
    def __init__(self, folder: LocalFolder, server: Remote, remote: RemoteSide, state: StateDB,
                 device: str, rules: IgnoreRules, report: Report, *,
                 transfer_workers: int = TRANSFER_WORKERS,
                 monotonic: Callable[[], float] = time.monotonic,
                 now_ns: Callable[[], int] = time.time_ns,
                 refusals: Refusals | None = None) -> None:
        """``transfer_workers``: downloads and chunk uploads in flight; with 1 everything
        happens in this thread, one after the other (the simulation's deterministic order).
        ``monotonic`` paces the state commits; ``now_ns`` (epoch) tells a fresh mtime.
        ``refusals``: where changes refused as read-only are remembered (``refusals.py``)."""
        self.refusals = refusals if refusals is not None else Refusals()
        self.folder, self.server, self.remote, self.state = folder, server, remote, state
        self.device, self.rules, self.report = device, rules, report
        self.transfer_workers = transfer_workers
        self.monotonic = monotonic
        self.now_ns = now_ns

    def run(self, plan: Plan, scan: LocalScan, tree: RemoteTree) -> Outcome:
        out = Outcome()
        self.scan, self.tree = scan, tree
        self.dirty_dirs: set[str] = set()
        self.last_commit = self.monotonic()
        self.state.begin()
        try:
            self._run(plan, out)
        except Exception:
            self._commit()
            raise
        # Not on a BaseException (a kill, as the simulation's crashes are): rows may be
        # committed late, never early, and a dying process commits nothing more.
        self._commit()
        return out

    def _commit(self) -> None:
        """Make the renames durable, then the rows that describe them."""
        for name in self.dirty_dirs:
            with contextlib.suppress(FileNotFoundError):  # a folder deleted since
                self.folder.fsync_dir(name)
        self.dirty_dirs.clear()
        self.state.commit()
        self.last_commit = self.monotonic()

    def _maybe_commit(self) -> None:
        if self.monotonic() - self.last_commit > COMMIT_EVERY:
            self._commit()
            self.state.begin()

    def _run(self, plan: Plan, out: Outcome) -> None:
        uploads = [a for a in plan.actions if a.op is Op.UPLOAD]
        downloads = [a for a in plan.actions if a.op is Op.DOWNLOAD]
        moves = [a for a in plan.actions if a.op in (Op.MOVE_LOCAL, Op.MOVE_REMOTE)]
        if moves:
            self._expect_moves(moves)
        for act in plan.actions:
            if act.op is Op.UPLOAD:
                if act is uploads[0]:
                    self._guard(out, "upload", partial(self._uploads, uploads, out))
                continue
            if act.op is Op.DOWNLOAD:
                if act is downloads[0]:
                    self._guard(out, "download", partial(self._downloads, downloads, out))
                continue
            self._guard(out, f"{act.op.value} {act.path}", partial(self._one, act))

    def _guard(self, out: Outcome, what: str, call: Callable[[], None]) -> None:
        try:
            call()
            out.done += 1
            self._maybe_commit()
        except Skipped as exc:
            out.skipped += 1
            log.info("skipped %s: %s", what, exc)
        except FATAL:
            raise
        except (errors.MiniDropboxError, OSError) as exc:
            message = exc.message if isinstance(exc, errors.MiniDropboxError) else str(exc)
            out.failed.append(f"{what}: {message}")
            self.report(f"failed {what}: {message}")

    # -- paths ------------------------------------------------------------------------------
    def _local(self, rel: str) -> str:
        """The name of ``rel`` in the folder: as the scan found it, else built from ``rel``."""
        found = self.scan.paths.get(path_key(rel))
        return found if found is not None else self._spell(rel)

    def _spell(self, rel: str) -> str:
        """The folder name a server path is written to: every existing folder on the way
        keeps its local spelling. A folder renamed ``Docs`` here and still ``docs`` on the
        server receives ``/docs/new.txt`` as ``Docs/new.txt``, never in a second folder
        ``docs`` beside it (which the next scan could not tell apart). The last segment
        is kept as given: it is the name being created or moved to."""
        name = local_name(rel)
        parts = name.split("/") if name else []
        for i in range(len(parts) - 1, 0, -1):
            found = self.scan.paths.get(path_key("/" + "/".join(parts[:i])))
            if found is not None:
                return "/".join([found, *parts[i:]])
        return name

    def _exists(self, name: str) -> bool:
        try:
            self.folder.info(name)
        except FileNotFoundError:
            return False
        return True

    def _check_local(self, rel: str) -> LocalStat:
        """The local file still has the stat the scan hashed, or ``Skipped``."""
        key = path_key(rel)
        try:
            st = stat_of(self.folder.info(self._local(rel)))
        except FileNotFoundError as exc:
            raise Skipped(f"{rel} disappeared") from exc
        if key not in self.scan.stats or st != self.scan.stats[key]:
            raise Skipped(f"{rel} changed since it was scanned")
        return st

    def _put(self, item: Item, stat: LocalStat | None) -> None:
        """Record a file both sides hold, with its local stat if that can be trusted later
        (``trusted_stat``: not if a write in the same clock tick could keep it)."""
        self.state.put(item, trusted_stat(stat, self.now_ns()))

    # -- one action -------------------------------------------------------------------------
    def _one(self, act: Action) -> None:
        handler = {Op.MOVE_LOCAL: self._move_local, Op.MOVE_REMOTE: self._move_remote,
                   Op.CONFLICT: self._conflict, Op.MKDIR_LOCAL: self._mkdir_local,
                   Op.MKDIR_REMOTE: self._mkdir_remote, Op.AGREE: self._agree,
                   Op.FORGET: self._forget, Op.DELETE_LOCAL: self._delete_local,
                   Op.DELETE_REMOTE: self._delete_remote}[act.op]
        handler(act)

    def _move_local(self, act: Action) -> None:
        assert act.dest is not None
        src, dst = self._local(act.path), self._spell(act.dest)
        if not self._exists(src):
            raise Skipped(f"{act.path} disappeared")
        make_folder(self.folder, parent_of(dst))
        try:
            if path_key("/" + src) == path_key("/" + dst):
                self._respell(src, dst)
            else:
                self.folder.rename(src, dst, replace=False)
        except FileExistsError as exc:
            raise Skipped(f"{act.dest} exists here") from exc
        self.dirty_dirs.update((parent_of(src), parent_of(dst)))
        self.state.rename(act.path, act.dest)
        if path_key(act.path) == path_key(act.dest):
            self._respelled(src, dst)
        self.report(f"moved {act.path} -> {act.dest}")

    def _respelled(self, src: str, dst: str) -> None:
        """After a case-only rename here, later actions of the round find what was under
        ``src`` under ``dst``: the keys are the same, only the names on disk changed (a file
        under a folder respelled ``z`` -> ``Z`` that the plan deletes is ``Z/x.txt`` now,
        not a file that disappeared)."""
        paths = self.scan.paths
        for key, name in paths.items():
            if name == src or name.startswith(src + "/"):
                paths[key] = dst + name[len(src):]

    def _expect_moves(self, moves: list[Action]) -> None:
        """Write the moves down (``Pending``, one commit for all) before making any: if the
        process dies before a move's rows are renamed, the next round finds it done and
        renames them then."""
        for act in moves:
            assert act.dest is not None
            side = "move-local" if act.op is Op.MOVE_LOCAL else "move-remote"
            base = act.base or Item(act.path, act.kind)
            self.state.expect(side, Item(act.dest, act.kind, base.hash, base.version,
                                         base.size), source=act.path)
        self._commit()
        self.state.begin()

    def _respell(self, src: str, dst: str) -> None:
        """A case-only rename, through an intermediate name: on a case-insensitive disk
        ``dst`` is ``src`` itself, which a never-clobbering rename would refuse. The
        intermediate name (``RESPELL_PREFIX`` + the new name) is ignored by the scan, and
        a crash in between is finished at the next start (``finish_respells``)."""
        via = join(parent_of(src), RESPELL_PREFIX + dst.rsplit("/", 1)[-1])
        self.folder.rename(src, via, replace=False)
        try:
            self.folder.rename(via, dst, replace=False)
        except OSError:
            self.folder.rename(via, src, replace=False)
            raise

    def _move_remote(self, act: Action) -> None:
        assert act.dest is not None
        try:
            self.server.move(self.remote.to_remote(act.path), self.remote.to_remote(act.dest))
        except (errors.NotFound, errors.Conflict) as exc:
            raise Skipped(exc.message) from exc
        except errors.ReadOnly as exc:
            self._refused_removal(act.path, act.kind, exc)
            return
        self.state.rename(act.path, act.dest)
        key, base = path_key(act.dest), act.base
        here = self.scan.items.get(key)
        if (act.kind == "file" and base is not None and here is not None
                and here.hash == base.hash and key in self.scan.stats):
            # The scan read the renamed file to match it with the base: keep the stat it
            # read it at (a rename changes the ctime), so it is not read again next round.
            self._put(Item(act.dest, "file", base.hash, base.version, base.size),
                      self.scan.stats[key])
        self.report(f"moved on server {act.path} -> {act.dest}")

    def _conflict(self, act: Action) -> None:
        assert act.dest is not None
        src, dst = self._local(act.path), self._spell(act.dest)
        try:
            self.folder.rename(src, dst, replace=False)
        except FileNotFoundError as exc:
            raise Skipped(f"{act.path} disappeared") from exc
        except FileExistsError as exc:
            raise Skipped(f"{act.dest} exists here") from exc
        self.dirty_dirs.add(parent_of(dst))
        self.report(f"conflict {act.path}: both sides changed; yours is kept as {act.dest}")

    def _mkdir_local(self, act: Action) -> None:
        target = self._spell(act.path)
        make_folder(self.folder, target)
        if self.folder.info(target).kind != "folder":
            raise Skipped(f"{act.path} is a file here")
        self.state.put(Item(act.path, "folder"))
        self.report(f"created folder {act.path}")

    def _mkdir_remote(self, act: Action) -> None:
        try:
            self.server.make_folder(self.remote.to_remote(act.path))
        except errors.Conflict as exc:
            raise Skipped(exc.message) from exc
        except errors.ReadOnly as exc:
            self.refusals.add(act.path, None, exc.message)
            return
        self.state.put(Item(act.path, "folder"))
        self.report(f"created folder on server {act.path}")

    def _agree(self, act: Action) -> None:
        rem = act.remote
        assert rem is not None
        if rem.kind == "folder":
            self.state.put(Item(rem.path, "folder"))
            return
        key = path_key(rem.path)
        same = act.local is not None and act.local.hash == rem.hash
        self._put(rem, self.scan.stats.get(key) if same else None)

    def _forget(self, act: Action) -> None:
        self.state.forget(act.path)

    def _delete_local(self, act: Action) -> None:
        target = self._local(act.path)
        if act.kind == "folder":
            try:
                self.folder.rmdir(target)
            except FileNotFoundError:
                pass
            except OSError:
                # Something we do not sync (an ignored file) is still inside: keep the folder;
                # the next round puts it back on the server rather than lose anything.
                self.state.forget(act.path)
                return
            self.state.forget(act.path)
            self.report(f"deleted folder {act.path} (deleted on the server)")
            return
        if act.local is None or act.base is None or act.local.hash != act.base.hash:
            raise Skipped(f"{act.path} has changes the server does not have")
        try:
            self._check_local(act.path)
        except Skipped:
            if not self._exists(target):
                self.state.forget(act.path)
                return
            raise
        aside = self._set_aside(act.path)
        self.folder.unlink(aside)
        self.dirty_dirs.add(parent_of(target))
        self.state.forget(act.path)
        self.report(f"deleted {act.path} (deleted on the server)")

    def _set_aside(self, rel: str) -> str:
        """Rename the local file of ``rel`` aside, then check it is still the file the scan
        read (inode, size, mtime; the rename moved its ctime); its aside name. A write that
        raced the check before it is caught here and the file is put back (``Skipped``); a
        write after it creates a new file under the old name. Either way nothing the user
        wrote is deleted or overwritten. A crash leaves the aside file for
        ``recover_set_aside``."""
        name = self._local(rel)
        aside = join(parent_of(name), ASIDE_PREFIX + name.rsplit("/", 1)[-1])
        scanned = self.scan.stats.get(path_key(rel))
        try:
            self.folder.rename(name, aside, replace=False)
        except FileNotFoundError as exc:
            raise Skipped(f"{rel} disappeared") from exc
        st = stat_of(self.folder.info(aside))
        if scanned is None or (st.ino, st.size, st.mtime_ns) != (scanned.ino, scanned.size,
                                                                 scanned.mtime_ns):
            put_back(self.folder, aside, name)
            raise Skipped(f"{rel} changed since it was scanned")
        return aside

    def _delete_remote(self, act: Action) -> None:
        remote = self.remote.to_remote(act.path)
        if act.kind == "folder":
            self._check_remote_subtree(act.path)
        if act.kind == "file":
            current = self.server.find(remote)
            if current is None:
                self.state.forget(act.path)
                return
            if (act.remote is None or act.base is None or current.version
                    != act.remote.version or current.content_hash != act.base.hash):
                raise Skipped(f"{act.path} changed on the server")
        # For a file the server re-checks the version we saw, so an edit committed since
        # the check above survives (409) instead of going to the trash.
        guard = act.remote.version if act.kind == "file" and act.remote is not None else None
        try:
            self.server.delete(remote, if_version=guard)
        except errors.NotFound:
            pass
        except errors.Conflict as exc:
            raise Skipped(f"{act.path} changed on the server") from exc
        except errors.ReadOnly as exc:
            self._refused_removal(act.path, act.kind, exc)
            return
        self.state.forget(act.path, subtree=act.kind == "folder")
        self.report(f"deleted on server {act.path}" + ("/" if act.kind == "folder" else ""))

    def _refused_removal(self, rel: str, kind: str, exc: errors.ReadOnly) -> None:
        """A deletion or move the server refused (read-only): forget the rows, so the next
        round brings the server's copy back here (a moved one stays as the user's own)."""
        self.state.forget(rel, subtree=kind == "folder")
        self.report(f"restoring {rel}: {exc.message} It cannot be deleted or moved there.")

    def _check_remote_subtree(self, rel: str) -> None:
        """A folder is deleted on the server only if nothing in it changed since the listing
        the plan was made from (the server deletes a folder with whatever is inside)."""
        prefix = path_key(rel) + "/"
        planned = {k: (i.kind, i.version, i.hash) for k, i in self.tree.items.items()
                   if k.startswith(prefix)}
        now = {}
        try:
            for e in self.server.list_folder(self.remote.to_remote(rel), recursive=True):
                # Entries sync ignores go with the folder, as they would in a file manager.
                rel_path = self.remote.to_rel(e.path)
                if rel_path != rel and not self.rules.ignored(rel_path, e.is_folder):
                    now[path_key(rel_path)] = (e.type, e.version, e.content_hash)
        except errors.NotFound:
            return
        if now != planned:
            raise Skipped(f"{rel} changed on the server")

    # -- uploads ----------------------------------------------------------------------------
    def _uploads(self, actions: list[Action], out: Outcome) -> None:
        items: list[UploadItem] = []
        before: dict[str, tuple[Action, LocalStat]] = {}
        for act in actions:
            try:
                scanned = self._check_local(act.path)
            except Skipped as exc:
                out.skipped += 1
                log.info("skipped upload: %s", exc)
                continue
            parent = act.remote.version if act.remote and act.remote.kind == "file" else None
            remote = self.remote.to_remote(act.path)
            assert act.local is not None and act.local.hash is not None
            items.append(UploadItem(self._local(act.path), remote, parent, act.local.hash))
            before[path_key(remote)] = (act, scanned)
        if not items:
            return
        for act, scanned in before.values():
            assert act.local is not None and act.local.hash is not None
            # The stat a recovered commit is recorded with (``_settle_pending``), judged
            # now, when it was seen: unknown if a write in the same clock tick could keep it.
            self.state.expect("remote", Item(act.path, "file", act.local.hash, None,
                                             scanned.size),
                              trusted_stat(scanned, self.now_ns()) or UNKNOWN_STAT)
        self._commit()  # durable before the commits they describe (``Pending``)
        self.state.begin()
        result = upload_many(self.server, items, device=self.device, stats=out.sent,
                             folder=self.folder, workers=self.transfer_workers)
        for entry in result.entries:
            if path_key(entry.path) not in before:
                continue  # not one we asked for: nothing to record
            act, st = before[path_key(entry.path)]
            try:
                now = stat_of(self.folder.info(self._local(act.path)))
            except FileNotFoundError:
                now = UNKNOWN_STAT
            # Record the stat only if the file did not move during the upload; otherwise the
            # next scan re-reads it and uploads the newer content.
            item = Item(act.path, "file", entry.content_hash, entry.version, entry.size)
            self._put(item, st if now == st else None)
            out.done += 1
            self.report(f"uploaded {act.path} (v{entry.version}, "
                        f"{human_bytes(entry.size or 0)})")
        sent = out.sent
        if sent.files:
            # Delta sync at work: only chunks the server lacked were sent.
            self.report(f"sent {human_bytes(sent.bytes_sent)} of {human_bytes(sent.bytes_total)} "
                        f"({sent.chunks_sent} of {sent.chunks_total} chunks) for "
                        f"{sent.files} file(s)")
        for failure in result.failures:
            if isinstance(failure.error, errors.Conflict):  # a version or a name raced us
                out.skipped += 1
                log.info("upload of %s raced a change on the server", failure.remote_path)
                continue
            if isinstance(failure.error, LocalFileChanged):  # written again since the scan
                out.skipped += 1
                log.info("upload of %s waits: %s", failure.remote_path, failure.message)
                continue
            refused = before.get(path_key(failure.remote_path))
            if isinstance(failure.error, errors.ReadOnly) and refused is not None:
                act, scanned = refused
                assert act.local is not None
                # Its stat only if a write in the same clock tick could not hide behind it.
                self.refusals.add(act.path, act.local.hash, failure.message,
                                  trusted_stat(scanned, self.now_ns()))
                continue  # reported once, by the engine, with the other held changes
            out.failed.append(f"upload {failure.remote_path}: {failure.message}")
            self.report(f"failed upload {failure.remote_path}: {failure.message}")

    # -- downloads --------------------------------------------------------------------------
    def _downloads(self, actions: list[Action], out: Outcome) -> None:
        """Fetch a group into verified temp files, make the group known to the state DB
        (``Pending``: durable before any rename), then rename each into place. The next
        group's small files are already being fetched meanwhile (with more than one
        transfer worker): the server prepares them while this group is placed."""
        self.server.api.access_token()  # refresh once here, not in several workers at once
        fetcher = Fetcher(self.folder, self.server, self.remote, self.tree, self.report,
                          self.transfer_workers)
        groups = list(split_every(actions, DOWNLOAD_GROUP))
        ahead = (ThreadPoolExecutor(1, thread_name_prefix="sync-ahead")
                 if self.transfer_workers > 1 and len(groups) > 1 else None)
        try:
            coming: Future[list[Requested]] | None = None
            for i, group in enumerate(groups):
                requested = (result_of(coming) if coming is not None else fetcher.request_small(
                    [act for act in group if fetcher.batchable(act)], out.stats))
                coming = None
                if ahead is not None and i + 1 < len(groups):
                    coming = ahead.submit(fetcher.request_small, [
                        act for act in groups[i + 1] if fetcher.batchable(act)], out.stats)
                fetched = fetcher.take_small(requested, out) + fetcher.fetch_rest(
                    [act for act in group if not fetcher.batchable(act)], out)
                if not fetched:
                    continue
                for act, _, tmp_stat in fetched:
                    assert act.remote is not None
                    self.state.expect("local", act.remote, tmp_stat)
                self._commit()
                self.state.begin()
                for act, tmp, tmp_stat in fetched:
                    self._guard(out, f"download {act.path}",
                                partial(self._place, act, tmp, tmp_stat))
        finally:
            if ahead is not None:
                ahead.shutdown(wait=True)  # nothing writes temp files past the round

    def _place(self, act: Action, tmp: str, tmp_stat: LocalStat) -> None:
        """Rename the verified temp file into place if the target is still what the plan saw."""
        rem = act.remote
        assert rem is not None
        target = self._spell(act.path)
        try:
            ensure_inside(self.folder, parent_of(target))
            if act.local is None:
                self._rename_into_place(act, tmp, target)
            else:
                self._check_local(act.path)
                aside = self._set_aside(act.path)
                try:
                    self._rename_into_place(act, tmp, self._local(act.path))
                finally:
                    # Its content is the base's (checked): on the server already. (If its
                    # folder moved just now, the round's end puts it back there.)
                    with contextlib.suppress(FileNotFoundError):
                        self.folder.unlink(aside)
        finally:
            with contextlib.suppress(FileNotFoundError):
                self.folder.unlink(tmp)
        self.dirty_dirs.add(parent_of(target))  # fsynced before this round's rows are committed
        try:
            final: LocalStat | None = stat_of(self.folder.info(self._local(act.path)))
        except FileNotFoundError:
            # Placed, then moved (its folder with it) or deleted by the user at once: it was
            # downloaded, so it is recorded, and the next round sees what the user did to it.
            final = None
        same = final is not None and (final.ino, final.size, final.mtime_ns) == (
            tmp_stat.ino, tmp_stat.size, tmp_stat.mtime_ns)
        self._put(rem, final if same else None)
        self.report(f"downloaded {act.path} (v{rem.version}, {human_bytes(rem.size or 0)})")

    def _rename_into_place(self, act: Action, tmp: str, target: str) -> None:
        """Rename a fetched temp file to ``target``, never over anything. A target that
        appeared, or whose folder was moved or deleted since the plan, is skipped: the next
        round plans against what the user did (the folder is never made again here)."""
        try:
            self.folder.rename(tmp, target, replace=False)
        except FileExistsError as exc:
            raise Skipped(f"{act.path} appeared here meanwhile") from exc
        except FileNotFoundError as exc:
            if not self._exists(tmp):
                raise
            raise Skipped(f"the folder of {act.path} was moved or deleted here "
                          "meanwhile") from exc
