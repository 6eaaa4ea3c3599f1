"""WebDAV locks in the metadata database, so that every API replica agrees on them.

``DbLockStorage`` is wsgidav's lock-storage interface over the ``dav_locks`` table; a lock's
root is the resource's reference URL (``/<namespace>/<path>``, see ``provider.ref_url``), so
a file in a shared folder has one set of locks whichever member's path named it.

wsgidav checks for conflicts and then creates the lock under a lock of its own process;
``DbLockManager`` runs that check-and-create in one write transaction holding the lock
namespace's row lock instead, so two replicas can never both grant an exclusive lock.
Expired locks are never returned, and are deleted when met and by ``cleanup``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote

from sqlalchemy import Connection, bindparam, delete, insert, or_, select, update
from wsgidav import util
from wsgidav.dav_error import DAVError, DAVErrorCondition, PRECONDITION_CODE_LockConflict
from wsgidav.lock_man.lock_manager import (
    LockManager,
    generate_lock_token,
    normalize_lock_root,
    validate_lock,
)

from minidropbox.metadata import journal
from minidropbox.metadata.db import Database
from minidropbox.metadata.entries import _like_prefix
from minidropbox.metadata.tables import dav_locks

TIMEOUT_DEFAULT = 604800.0  # a week, as wsgidav's own storage
TIMEOUT_MAX = 4 * 604800.0
MAX_LOCKS_PER_ROOT = 100  # shared locks one resource may hold (a client cannot grow the table)


def _namespace(root: str) -> int:
    """``/<namespace>/a/b`` -> namespace."""
    head = unquote(root).lstrip("/").partition("/")[0]
    if not head.isdigit():
        raise ValueError(f"not a lock root: {root!r}")
    return int(head)


def _as_lock(row: Any) -> dict[str, Any]:
    return {"token": row.token, "root": row.root, "type": "write", "scope": row.scope,
            "depth": row.depth, "owner": row.owner.encode("utf-8"),
            "principal": row.principal, "timeout": row.timeout, "expire": row.expire}


class DbLockStorage:
    """wsgidav's lock storage (``LockStorageDict``'s interface) over ``dav_locks``."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        self._held = threading.local()  # the transaction ``DbLockManager.acquire`` holds

    def __repr__(self) -> str:
        return "DbLockStorage()"

    @contextmanager
    def transaction(self, root: str) -> Iterator[None]:
        """One write transaction, holding the lock root's namespace lock, for every call
        this thread makes inside it."""
        with self.db.write() as conn:
            journal.lock_namespace(conn, _namespace(root))
            self._held.conn = conn
            try:
                yield
            finally:
                self._held.conn = None

    @contextmanager
    def _conn(self, write: bool = True) -> Iterator[Connection]:
        """The held transaction, else a new one: a read (no writer's lock: every request
        that writes checks for locks first) or a write."""
        held: Connection | None = getattr(self._held, "conn", None)
        if held is not None:
            yield held
            return
        with self.db.write() if write else self.db.read() as conn:
            yield conn

    # -- the interface wsgidav calls --------------------------------------------------------
    def open(self) -> None:
        """Nothing to open: the database is the process's."""

    def close(self) -> None:
        """Nothing to close."""

    def cleanup(self) -> None:
        with self._conn() as conn:
            conn.execute(delete(dav_locks).where(dav_locks.c.expire < self.clock()))

    def clear(self) -> None:
        with self._conn() as conn:
            conn.execute(delete(dav_locks))

    def get(self, token: str) -> dict[str, Any] | None:
        with self._conn(write=False) as conn:
            row = conn.execute(select(dav_locks).where(dav_locks.c.token == token)).first()
        if row is None:
            return None
        if row.expire < self.clock():
            self.delete(token)
            return None
        return _as_lock(row)

    def create(self, path: str, lock: dict[str, Any]) -> dict[str, Any]:
        root = normalize_lock_root(path)
        timeout = float(lock.get("timeout") or TIMEOUT_DEFAULT)
        if timeout < 0 or timeout > TIMEOUT_MAX:
            timeout = TIMEOUT_MAX
        now = self.clock()
        lock.update(root=root, timeout=timeout, expire=now + timeout,
                    token=generate_lock_token())
        validate_lock(lock)
        ns = _namespace(root)
        with self._conn() as conn:
            held = conn.execute(select(dav_locks.c.token).where(
                dav_locks.c.namespace_id == ns, dav_locks.c.root == root,
                dav_locks.c.expire >= now).limit(MAX_LOCKS_PER_ROOT)).all()
            if len(held) >= MAX_LOCKS_PER_ROOT:
                raise DAVError(507, context_info=f"A resource holds at most "
                                                 f"{MAX_LOCKS_PER_ROOT} locks.")
            conn.execute(insert(dav_locks).values(
                token=lock["token"], namespace_id=ns, root=root, scope=lock["scope"],
                depth=lock["depth"], owner=bytes(lock["owner"]).decode("utf-8", "replace"),
                principal=lock["principal"], timeout=timeout, expire=lock["expire"]))
        return lock

    def refresh(self, token: str, *, timeout: float) -> dict[str, Any]:
        if timeout < 0 or timeout > TIMEOUT_MAX:
            timeout = TIMEOUT_MAX
        with self._conn() as conn:
            conn.execute(update(dav_locks).where(dav_locks.c.token == token).values(
                timeout=timeout, expire=self.clock() + timeout))
        lock = self.get(token)
        if lock is None:
            raise ValueError("The lock does not exist.")
        return lock

    def delete(self, token: str) -> bool:
        with self._conn() as conn:
            return bool(conn.execute(delete(dav_locks).where(
                dav_locks.c.token == token)).rowcount)

    def get_lock_list(self, path: str, *, include_root: bool, include_children: bool,
                      token_only: bool) -> list[Any]:
        root = normalize_lock_root(path)
        try:
            ns = _namespace(root)
        except ValueError:
            return []  # "/" (no namespace): nothing is ever locked there
        wanted = []
        if include_root:
            wanted.append(dav_locks.c.root == root)
        if include_children:
            wanted.append(dav_locks.c.root.like(_like_prefix(root), escape="\\"))
        with self._conn(write=False) as conn:
            rows = conn.execute(select(dav_locks).where(
                dav_locks.c.namespace_id == ns, dav_locks.c.expire >= self.clock(),
                or_(*wanted))).all()
        return [row.token if token_only else _as_lock(row) for row in rows]

    def locks_on(self, roots: list[str]) -> list[dict[str, Any]]:
        """The live locks whose root is one of ``roots`` (one namespace's), in one query:
        what a write checks, for its resource and every folder above it."""
        by_ns: dict[int, list[str]] = {}
        for root in roots:
            try:
                by_ns.setdefault(_namespace(root), []).append(root)
            except ValueError:
                continue
        if not by_ns:
            return []
        now = self.clock()
        with self._conn(write=False) as conn:
            # One statement per namespace (one, or two at a shared folder's mount point).
            return [_as_lock(row) for ns, names in by_ns.items()
                    for row in conn.execute(_LOCKS_ON, {"now": now, "ns": ns, "roots": names})]


# Every write through WebDAV checks for locks: built once (building costs more than running).
_LOCKS_ON = select(dav_locks).where(dav_locks.c.expire >= bindparam("now"),
                                    dav_locks.c.namespace_id == bindparam("ns"),
                                    dav_locks.c.root.in_(bindparam("roots", expanding=True)))


class DbLockManager(LockManager):  # type: ignore[misc]
    """wsgidav's lock manager, with a lock's conflict check and creation in one database
    transaction (its own process-local lock cannot keep two replicas apart)."""

    storage: DbLockStorage

    def acquire(self, *, url: str, **kwargs: Any) -> Any:
        with self.storage.transaction(normalize_lock_root(url)):
            return super().acquire(url=url, **kwargs)

    def _get_write_conflicts(self, url: str, depth: str, token_list: list[str],
                             principal: str) -> Any:
        """wsgidav's rule (a lock on the resource, or an infinite one on a folder above it,
        that the request does not hold; with ``depth`` infinity, any lock below) with the
        resource's and its folders' locks read in one query instead of one per level."""
        errcond = DAVErrorCondition(PRECONDITION_CODE_LockConflict)
        root = normalize_lock_root(url)
        levels = []
        u = root
        while u:
            levels.append(normalize_lock_root(u))
            u = util.get_uri_parent(u)
        for lock in self.storage.locks_on(levels):
            if lock["root"] != root and lock["depth"] != "infinity":
                continue  # a folder's lock covers what is inside only at depth infinity
            if principal == lock["principal"] and lock["token"] in token_list:
                continue  # held by this request
            errcond.add_href(lock["root"])
        if depth == "infinity":
            for lock in self.storage.get_lock_list(root, include_root=False,
                                                   include_children=True, token_only=False):
                errcond.add_href(lock["root"])
        return errcond

    def remove_all_locks_from_url(self, url: str, *, recursive: bool = False) -> None:
        root = normalize_lock_root(url)
        try:
            ns = _namespace(root)
        except ValueError:
            return
        which = [dav_locks.c.root == root]
        if recursive:
            which.append(dav_locks.c.root.like(_like_prefix(root), escape="\\"))
        with self.storage.transaction(root), self.storage._conn() as conn:
            conn.execute(delete(dav_locks).where(dav_locks.c.namespace_id == ns, or_(*which)))
