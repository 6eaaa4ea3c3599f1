"""The API process's composition root: every long-lived object, built once per app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio.to_thread

from minidropbox.api.metrics import ApiMetrics
from minidropbox.api.shutdown import wake_on_stop_signal
from minidropbox.core.errors import TooManyRequests
from minidropbox.core.grants import KeyRing
from minidropbox.core.ratelimit import SlidingWindow
from minidropbox.metadata import server_info
from minidropbox.metadata.db import Database
from minidropbox.service.accounts import AccountService
from minidropbox.service.app_passwords import AppPasswordService
from minidropbox.service.changes import ChangeService
from minidropbox.service.chunks import ChunkService
from minidropbox.service.cluster import StorageCluster
from minidropbox.service.direct import DirectTransfers
from minidropbox.service.files import FileService
from minidropbox.service.leader import Leadership, SoloLeader, leadership_for
from minidropbox.service.links import LinkService
from minidropbox.service.mounts import SharedFileService
from minidropbox.service.notify import ChangeHub, LocalChangeHub
from minidropbox.service.notify_pg import PgChangeHub
from minidropbox.service.shared_folders import SharedFolderService
from minidropbox.service.storage_admin import StorageAdmin
from minidropbox.service.tree_limits import TreeLimits
from minidropbox.service.user_admin import UserAdmin
from minidropbox.settings import Settings, grant_key_materials

log = logging.getLogger("minidropbox.api")

BackgroundJob = Callable[[], Awaitable[None]]
T = TypeVar("T")


@dataclass
class AppContext:
    settings: Settings
    db: Database
    accounts: AccountService
    cluster: StorageCluster
    chunks: ChunkService
    files: FileService
    changes: ChangeService
    links: LinkService = field(init=False)
    app_passwords: AppPasswordService
    shared_folders: SharedFolderService = field(init=False)
    direct: DirectTransfers = field(init=False)
    users: UserAdmin = field(init=False)
    clock: Callable[[], float] = time.time
    background_jobs: list[tuple[str, BackgroundJob]] = field(default_factory=list)
    # Jobs that must run once in the whole cluster, not once per API replica: they run only
    # while ``leader`` says this process leads (always, on SQLite).
    cluster_jobs: list[tuple[str, BackgroundJob]] = field(default_factory=list)
    leader: Leadership = field(default_factory=SoloLeader)
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    storage_admin: StorageAdmin | None = None  # repair, audit, GC; None without nodes
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _request_rate: SlidingWindow | None = None
    _password_work: tuple[anyio.CapacityLimiter, anyio.CapacityLimiter] | None = None
    _longpolls: Counter[int] = field(default_factory=Counter)

    def nodes_up(self) -> int:
        """How many storage nodes can take writes right now (none configured: 0)."""
        return len(self.cluster.writable_nodes())

    def check_rate(self, user_id: int) -> None:
        """Per-user request rate cap (429 with Retry-After past it)."""
        if self._request_rate is None:
            self._request_rate = SlidingWindow(self.settings.requests_per_minute)
        key, now = str(user_id), self.clock()
        wait = self._request_rate.blocked_for(key, now)
        if wait:
            raise TooManyRequests("Too many requests; slow down.", retry_after=wait)
        self._request_rate.hit(key, now)

    @contextlib.contextmanager
    def longpoll_slot(self, user_id: int) -> Iterator[None]:
        """Hold one of the account's ``longpolls_per_user`` long-polls (429 when all are
        taken): each held request keeps a socket and a waiter until its timeout."""
        if self._longpolls[user_id] >= self.settings.longpolls_per_user:
            raise TooManyRequests("Too many long-polls open for this account; close some "
                                  "or use the notification WebSocket.", retry_after=5)
        self._longpolls[user_id] += 1
        try:
            yield
        finally:
            self._longpolls[user_id] -= 1
            if self._longpolls[user_id] <= 0:
                del self._longpolls[user_id]

    async def hash_password_work(self, fn: Callable[..., T], *args: Any,
                                 signup: bool = False) -> T:
        """Run ``fn`` (which computes an Argon2id hash) in a worker thread, at most
        ``password_hashes_at_once`` logins and password changes at a time, and signups one
        at a time on a queue of their own (a flood of signups never delays a login).

        Each hash takes 19 MiB: without the cap a burst of signups or logins grows the
        process by that much per request. Waiting here holds no worker thread that other
        requests need."""
        if self._password_work is None:
            self._password_work = (anyio.CapacityLimiter(self.settings.password_hashes_at_once),
                                   anyio.CapacityLimiter(1))
        limiter = self._password_work[1 if signup else 0]
        return await anyio.to_thread.run_sync(lambda: fn(*args), limiter=limiter)

    async def start(self) -> None:
        for name, job in self.background_jobs:
            self._tasks.append(asyncio.create_task(_supervise(name, self._track(name, job)),
                                                   name=name))
        if self.cluster_jobs:
            self._tasks.append(asyncio.create_task(_supervise(
                "leader", lambda: self.leader.lead(self._run_cluster_jobs)), name="leader"))

    async def _run_cluster_jobs(self) -> None:
        await asyncio.gather(*(_supervise(name, self._track(name, job))
                               for name, job in self.cluster_jobs))

    def _track(self, name: str, job: BackgroundJob) -> BackgroundJob:
        """``job``, showing in the metrics whether it is running in this process."""
        async def tracked() -> None:
            self.metrics.job_started(name)
            try:
                await job()
            finally:
                self.metrics.job_stopped(name)
        return tracked

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.cluster.aclose()


async def _supervise(name: str, job: BackgroundJob) -> None:
    """Run a background loop forever; a crash is logged and the loop restarted."""
    while True:
        try:
            await job()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background job %s failed; restarting in 1 s", name)
            await asyncio.sleep(1)


def build_context(settings: Settings) -> AppContext:
    settings.resolve_secrets()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url)
    db.migrate()
    cluster = StorageCluster(settings, db)
    with db.write() as conn:
        identity = server_info.ensure_identity(conn)
    # Several API replicas share PostgreSQL: their waiters hear each other's commits.
    hub: ChangeHub = LocalChangeHub() if db.is_sqlite else PgChangeHub(db)
    changes = ChangeService(db, identity, hub, retention=settings.journal_retention,
                            max_page_size=settings.max_page_size,
                            trim_interval=settings.journal_trim_interval)
    accounts = AccountService(db, settings)
    ctx = AppContext(settings=settings, db=db, accounts=accounts,
                     cluster=cluster, chunks=ChunkService(
                         db, cluster, settings.replicas,
                         fetches_per_download=settings.fetches_per_download),
                     files=SharedFileService(
                         db, max_page_size=settings.max_page_size,
                         on_change=changes.committed,
                         limits=TreeLimits(
                             max_depth=settings.max_path_depth,
                             max_entries_per_change=settings.max_entries_per_change,
                             max_entries=settings.max_entries_per_account,
                             max_chunk_refs=settings.max_chunk_refs_per_account,
                             max_chunks_per_file=settings.max_chunks_per_file,
                             min_average_chunk=settings.min_average_chunk)),
                     changes=changes,
                     app_passwords=AppPasswordService(db, settings,
                                                      accounts.login_throttle),
                     leader=leadership_for(db.url, settings.leader_interval))
    assert isinstance(ctx.files, SharedFileService)
    ctx.links = LinkService(db, ctx.files, settings)
    ctx.shared_folders = SharedFolderService(db, ctx.files, settings)
    assert settings.cluster_secret  # resolve_secrets sets it
    materials = grant_key_materials(settings.grant_keys, settings.cluster_secret)
    ctx.direct = DirectTransfers(
        db, cluster, ctx.chunks, (KeyRing.from_material("grant", materials),
                                  KeyRing.from_material("receipt", materials)),
        grant_ttl=settings.grant_ttl, receipt_ttl=settings.receipt_ttl,
        max_chunk_bytes=settings.max_chunk_bytes, min_bytes=settings.direct_min_bytes,
        enabled=settings.direct_transfers)
    ctx.users = UserAdmin(db, settings)
    ctx.metrics.watch(ctx)
    if isinstance(hub, PgChangeHub):
        ctx.background_jobs.append(("change-notify", hub.run))
    ctx.background_jobs.append(("journal-trim", changes.trim_forever))
    ctx.background_jobs.append(("wake-waiters-on-stop",
                                lambda: wake_on_stop_signal(changes.hub.close)))
    if settings.nodes:
        ctx.background_jobs.append(("node-health", cluster.probe_forever))
        ctx.storage_admin = StorageAdmin.build(settings, db, cluster)
        for name, job in ctx.storage_admin.jobs():
            # node-status also loads the drain flags into this replica's placement, so every
            # replica runs it; repair, audit and GC run once in the cluster.
            jobs = ctx.background_jobs if name == "node-status" else ctx.cluster_jobs
            jobs.append((name, job))
    return ctx
