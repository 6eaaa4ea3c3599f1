"""The WebDAV resource tree (wsgidav's provider interface) over the file services.

Every operation goes through the same services as the API — ``FileService`` for commits,
moves, deletes (to the trash) and folders, ``ChunkService`` for verified chunk reads and
writes — so versions, quota (507), the journal and notifications behave exactly as for the
API. Nothing here touches a table of files directly.

Locks and dead properties are keyed by the resource's *reference URL*, which wsgidav shares
between all callers; ours is where the entry lives (``/<namespace>/<path there>``), so two
accounts' ``/notes.txt`` never share a lock or a property, and a file in a shared folder has
one set of each, whatever path each member mounted the folder at.
"""

from __future__ import annotations

import io
import mimetypes
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, unquote

from wsgidav.dav_error import DAVError
from wsgidav.dav_provider import DAVCollection, DAVNonCollection, DAVProvider

from minidropbox.core.errors import InvalidPath, NotFound
from minidropbox.core.paths import join, name_of, normalize_path
from minidropbox.dav.bridge import ChunkReader, UploadStream
from minidropbox.dav.checksums import OC_CHECKSUMS, Checksums, Digests, checksums_element
from minidropbox.dav.errors import dav_errors
from minidropbox.dav.session import DavSession
from minidropbox.dav.upload import commit_upload, copy_file, list_children, start_upload


def session_of(environ: dict[str, Any]) -> DavSession:
    session: DavSession = environ["minidropbox.dav"]
    return session


def ref_url(namespace_id: int, path: str) -> str:
    return quote(f"/{namespace_id}{'' if path == '/' else path}")


class MiniDropboxProvider(DAVProvider):  # type: ignore[misc]
    """Maps ``/dav/<path>`` to ``<path>`` in the caller's tree."""

    def __init__(self, checksums: Checksums) -> None:
        super().__init__()
        self.checksums = checksums

    def is_readonly(self) -> bool:
        return False

    def ref_url_to_path(self, url: str) -> str:
        # "/<namespace>/a/b" -> "/a/b", or where the caller mounted that shared folder
        # (inverts ``ref_url``)
        rest = unquote(url).lstrip("/")
        namespace, _, path = rest.partition("/")
        session = DavSession.current()
        if session is None or not namespace.isdigit():
            return "/" + path
        return session.path_of(int(namespace), "/" + path)

    def get_resource_inst(self, path: str, environ: dict[str, Any]) -> Any:
        session = session_of(environ)
        with dav_errors():
            try:
                clean = normalize_path(path or "/")
            except InvalidPath as exc:
                raise DAVError(400, context_info=exc.message) from exc
            try:
                with session.reading() as conn:
                    entry = session.metadata_in(conn, clean)
            except NotFound:
                return None
        return self.resource_for(entry, environ)

    def resource_for(self, entry: dict[str, Any], environ: dict[str, Any],
                     digests: Digests | None = None) -> Any:
        if entry["type"] == "folder":
            return FolderResource(entry["path"], environ, entry)
        return FileResource(entry["path"], environ, entry, digests)


class _EntryResource:
    """What files and folders have in common: the caller, the entry, the reference URL."""

    path: str
    environ: dict[str, Any]
    entry: dict[str, Any]
    provider: Any

    @property
    def session(self) -> DavSession:
        return session_of(self.environ)

    def get_ref_url(self) -> str:
        return ref_url(*self.session.where(self.entry["path"]))

    def get_display_name(self) -> str:
        return name_of(self.entry["path"])

    def get_creation_date(self) -> float | None:
        return self.entry["modified"] or None

    def get_last_modified(self) -> float | None:
        return self.entry["modified"] or None

    def _dest(self, dest_path: str) -> str:
        try:
            return normalize_path(dest_path)
        except InvalidPath as exc:
            raise DAVError(400, context_info=exc.message) from exc

    def _forget(self) -> None:
        """Drop the locks of this resource and everything under it (its dead properties
        went with the entry, in the delete's own transaction)."""
        self.remove_all_locks(recursive=True)  # type: ignore[attr-defined]

    def _move(self, dest_path: str) -> None:
        # Dead properties travel with the entries in the move's own transaction.
        dest = self._dest(dest_path)
        s = self.session
        with dav_errors():
            s.ctx.files.move(s.principal, self.entry["path"], dest)
        self.remove_all_locks(recursive=True)  # type: ignore[attr-defined]

    def support_recursive_move(self, dest_path: str) -> bool:
        return True

    def move_recursive(self, dest_path: str) -> list[Any]:
        """MOVE, of a file or a whole folder: one ``FileService.move`` (no bytes move)."""
        self._move(dest_path.rstrip("/") or "/")
        return []

    def _copy_properties(self, dest: str) -> None:
        if self.provider.prop_manager:
            self.provider.prop_manager.copy_properties(
                self.get_ref_url(), ref_url(*self.session.where(dest)),
                environ=self.environ)

    def set_last_modified(self, dest_path: str, time_stamp: Any, *, dry_run: bool) -> bool:
        """``Win32LastModifiedTime`` (an HTTP date) or ``getlastmodified`` from PROPPATCH."""
        try:
            when = (float(time_stamp) if str(time_stamp).strip().isdigit()
                    else parsedate_to_datetime(str(time_stamp)).timestamp())
        except (TypeError, ValueError) as exc:
            raise DAVError(400, context_info="Not an HTTP date.") from exc
        if not dry_run and self.entry["type"] == "file":
            s = self.session
            with dav_errors():
                self.entry = s.ctx.files.set_mtime(s.principal, self.entry["path"], when)
        return True


class FileResource(_EntryResource, DAVNonCollection):  # type: ignore[misc]
    def __init__(self, path: str, environ: dict[str, Any], entry: dict[str, Any],
                 digests: Digests | None = None) -> None:
        DAVNonCollection.__init__(self, path, environ)
        self.entry = entry
        self._digests = digests
        self._upload: UploadStream | None = None

    def get_content_length(self) -> int:
        return int(self.entry["size"] or 0)

    def get_content_type(self) -> str:
        return mimetypes.guess_type(self.entry["path"])[0] or "application/octet-stream"

    def get_etag(self) -> str | None:
        etag: str | None = self.entry["content_hash"]  # the ETag is the content hash
        return etag

    def support_etag(self) -> bool:
        return True

    def support_ranges(self) -> bool:
        return True

    def get_property_names(self, *, is_allprop: bool) -> list[str]:
        names: list[str] = super().get_property_names(is_allprop=is_allprop)
        if self.digests() is not None:
            names.append(OC_CHECKSUMS)
        return names

    def get_property_value(self, name: str) -> Any:
        if name == OC_CHECKSUMS:
            digests = self.digests()
            if digests is None:
                raise DAVError(404)
            return checksums_element(digests)
        return super().get_property_value(name)

    def digests(self) -> Digests | None:
        if self._digests is None and self.entry["content_hash"]:
            with self.session.reading() as conn:
                self._digests = self.provider.checksums.of(self.entry["content_hash"], conn)
        return self._digests

    def get_content(self) -> Any:
        s = self.session
        with dav_errors():
            entry, chunk_list = s.ctx.files.content(s.principal, self.entry["path"], None)
        size = int(entry["size"])
        if size == 0:
            return io.BytesIO(b"")
        return ChunkReader(s.bridge, size,
                           lambda start: s.ctx.chunks.stream(chunk_list, start, size - 1))

    def begin_write(self, *, content_type: str | None = None) -> UploadStream:
        self._upload = start_upload(self.session, self.environ)
        return self._upload

    def end_write(self, *, with_errors: bool) -> None:
        upload, self._upload = self._upload, None
        if upload is None:
            return
        if with_errors:
            upload.abort()
            return
        with dav_errors():
            self.entry = commit_upload(self.session, self.entry["path"], upload, self.environ,
                                       self.provider.checksums)
        self._digests = Digests(upload.sha1.hexdigest(), upload.md5.hexdigest())

    def delete(self) -> None:
        s = self.session
        with dav_errors():
            s.ctx.files.delete(s.principal, self.entry["path"])
        self._forget()

    def copy_move_single(self, dest_path: str, *, is_move: bool) -> None:
        # Only reached for COPY: every MOVE is one ``move_recursive``.
        dest = self._dest(dest_path)
        s = self.session
        with dav_errors():
            copy_file(s, self.entry["path"], dest)
        self._copy_properties(dest)


class FolderResource(_EntryResource, DAVCollection):  # type: ignore[misc]
    def __init__(self, path: str, environ: dict[str, Any], entry: dict[str, Any]) -> None:
        DAVCollection.__init__(self, path, environ)
        self.entry = entry

    def get_used_bytes(self) -> int:
        s = self.session
        return s.ctx.chunks.used_bytes(s.principal)

    def get_available_bytes(self) -> int | None:
        quota = self.session.principal.quota_bytes
        if quota is None:
            return None
        return max(0, quota - self.get_used_bytes())

    def get_member_list(self) -> list[Any]:
        s = self.session
        limit = s.ctx.settings.dav_max_propfind_entries
        with dav_errors():
            rows = list_children(s, self.entry["path"], limit + 1)
        if len(rows) > limit:
            raise DAVError(403, context_info=f"The folder holds more than {limit} entries; "
                                             "list it through the API instead.")
        with s.reading() as conn:
            sums = self.provider.checksums.of_many(
                [r["content_hash"] for r in rows if r["content_hash"]], conn)
        return [self.provider.resource_for(r, self.environ, sums.get(r["content_hash"] or ""))
                for r in rows]

    def get_member_names(self) -> list[str]:
        return [name_of(r.entry["path"]) for r in self.get_member_list()]

    def get_member(self, name: str) -> Any:
        return self.provider.get_resource_inst(join(self.entry["path"], name), self.environ)

    def create_empty_resource(self, name: str) -> FileResource:
        path = self._dest(join(self.entry["path"], name))
        entry = {"path": path, "type": "file", "size": 0, "version": None,
                 "modified": 0.0, "content_hash": None}
        resource = FileResource(path, self.environ, entry)  # committed by its PUT
        if self.environ.get("REQUEST_METHOD") == "LOCK":
            # A LOCK on an unmapped URL creates an empty file (RFC 4918 §9.10.4). A PUT
            # commits its own version once the body is in: no empty version first.
            resource.begin_write()
            resource.end_write(with_errors=False)
        return resource

    def create_collection(self, name: str) -> None:
        s = self.session
        path = self._dest(join(self.entry["path"], name))
        with dav_errors():
            s.ctx.files.mkdir(s.principal, path)

    def support_recursive_delete(self) -> bool:
        return True

    def delete(self) -> None:
        if self.entry["path"] == "/":
            raise DAVError(403, context_info="The root folder cannot be deleted.")
        s = self.session
        with dav_errors():
            s.ctx.files.delete(s.principal, self.entry["path"])
        self._forget()

    def copy_move_single(self, dest_path: str, *, is_move: bool) -> None:
        # Only reached for COPY (folders move recursively): make the folder, copy its
        # properties; wsgidav then copies each member.
        dest = self._dest(dest_path.rstrip("/") or "/")
        s = self.session
        with dav_errors():
            s.ctx.files.mkdir(s.principal, dest)
        self._copy_properties(dest)

