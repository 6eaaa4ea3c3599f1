"""What one authenticated WebDAV request carries into the WSGI side."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from minidropbox.api.context import AppContext
from minidropbox.core.errors import NotFound
from minidropbox.core.paths import lookup_path
from minidropbox.dav.bridge import LoopBridge
from minidropbox.metadata import entries
from minidropbox.service.accounts import Principal
from minidropbox.service.files import ROOT, public_entry
from minidropbox.service.mounts import Mount, SharedFileService, mounts_in

_current = threading.local()  # the session of the request this worker thread is serving


@dataclass(frozen=True)
class DavSession:
    ctx: AppContext
    principal: Principal
    bridge: LoopBridge
    # The caller's mount points, read once per request (a PROPFIND names many resources).
    _mounts: list[list[Mount]] = field(default_factory=list, compare=False)
    # The request's one read transaction (``reading``): [its context manager, its connection]
    # while open; and whether this request shares one at all (``share_reads``).
    _reader: list[Any] = field(default_factory=list, compare=False)
    _shared: list[bool] = field(default_factory=list, compare=False)

    def share_reads(self) -> None:
        """Every read this request makes before it answers goes into one read transaction
        (a PROPFIND or MKCOL: mount points, the entry, checksums, dead properties), until
        ``end_reads``. Only for requests whose reads all come before any write of theirs:
        a snapshot taken before a write would not show it."""
        self._shared.append(True)

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read transaction: the request's shared one (opened at the first need), else a
        new one."""
        if not self._shared:
            with self.ctx.db.read() as conn:
                yield conn
            return
        if not self._reader:
            opened = self.ctx.db.read()
            self._reader.extend([opened, opened.__enter__()])
        yield self._reader[1]

    def end_reads(self) -> None:
        """Close the shared read transaction, if one was opened."""
        self._shared.clear()
        if self._reader:
            opened = self._reader[0]
            self._reader.clear()
            opened.__exit__(None, None, None)

    def where(self, path: str) -> tuple[int, str]:
        """The namespace ``path`` lives in and its path there: a file in a shared folder is
        one resource (one set of locks and dead properties) for every member."""
        files = self.files()
        target = files.resolve(self.principal, path, self.mount_list())
        if target.at_mount_point:  # the mount point itself is an entry of the caller's tree
            return self.principal.namespace_id, path
        return target.principal.namespace_id, target.path

    def path_of(self, namespace_id: int, path: str) -> str:
        """Inverts ``where``: the caller's path of ``path`` in ``namespace_id``."""
        for mount in self.mount_list():
            if mount.namespace_id == namespace_id and namespace_id != self.principal.namespace_id:
                return mount.path if path == "/" else mount.path + path
        return path

    def files(self) -> SharedFileService:
        files = self.ctx.files
        assert isinstance(files, SharedFileService)
        return files

    def mount_list(self, conn: Connection | None = None) -> list[Mount]:
        """The caller's mount points, read at the first need in this request (in ``conn``
        when given)."""
        if not self._mounts:
            if conn is None:
                with self.reading() as own:
                    return self.mount_list(own)
            self._mounts.append(mounts_in(conn, self.principal))
        return self._mounts[0]

    def metadata_in(self, conn: Connection, path: str) -> dict[str, Any]:
        """``SharedFileService.metadata`` read in ``conn``, a read transaction the request
        already holds (``NotFound`` if nothing lives there)."""
        target = self.files().resolve(self.principal, path, self.mount_list(conn))
        if target.at_mount_point:
            return _entry_in(conn, self.principal.namespace_id, path)
        return target.shown(_entry_in(conn, target.principal.namespace_id, target.path))

    # wsgidav maps lock roots back to paths without telling which request asks
    # (``ref_url_to_path``); the worker thread knows.
    def enter(self) -> None:
        _current.session = self

    @staticmethod
    def leave() -> None:
        _current.session = None

    @staticmethod
    def current() -> DavSession | None:
        session: DavSession | None = getattr(_current, "session", None)
        return session


def _entry_in(conn: Connection, namespace_id: int, raw_path: str) -> dict[str, Any]:
    """``FileService.metadata`` in a transaction the caller holds."""
    path = lookup_path(raw_path)
    if path == "/":
        return public_entry(ROOT)
    entry = entries.live(conn, namespace_id, path)
    if entry is None:
        raise NotFound(f"{path} does not exist.")
    return public_entry(entry)
