"""What one authenticated WebDAV request carries into the WSGI side."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from minidropbox.api.context import AppContext
from minidropbox.dav.bridge import LoopBridge
from minidropbox.service.accounts import Principal
from minidropbox.service.mounts import Mount, SharedFileService

_current = threading.local()  # the session of the request this worker thread is serving


@dataclass(frozen=True)
class DavSession:
    ctx: AppContext
    principal: Principal
    bridge: LoopBridge
    # The caller's mount points, read once per request (a PROPFIND names many resources).
    _mounts: list[list[Mount]] = field(default_factory=list, compare=False)

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

    def mount_list(self) -> list[Mount]:
        """The caller's mount points, read at the first need in this request."""
        if not self._mounts:
            self._mounts.append(self.files().mounts(self.principal))
        return self._mounts[0]

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
