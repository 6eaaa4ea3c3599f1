"""Writes through WebDAV: PUT streamed into the chunk store and committed; COPY by chunk list.

A PUT takes the same path as the API's ``PUT /api/v1/files/content``: the body is cut with
the shared chunker as it arrives (in the request's worker thread), each chunk stored on R
nodes against the quota by ``ChunkService.store_cut`` while the rest arrives, then one
``FileService`` commit makes the new version.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from minidropbox.core.errors import InvalidInput, NotFound
from minidropbox.dav.bridge import UploadStream
from minidropbox.dav.checksums import Checksums, Digests, parse_oc_checksum
from minidropbox.dav.errors import dav_errors
from minidropbox.dav.session import DavSession
from minidropbox.service.chunks import StoredFile
from minidropbox.service.files import CommitRequest

DEVICE = "webdav"


def start_upload(s: DavSession, environ: dict[str, Any]) -> UploadStream:
    """Begin a PUT: its body is cut as it streams in, each chunk stored by
    ``ChunkService.store_cut`` (counted against the quota). A declared size —
    ``Content-Length``, or Finder's ``X-Expected-Entity-Length`` with chunked encoding — lets
    a file that cannot fit be refused before its body is read."""
    declared = environ.get("CONTENT_LENGTH") or environ.get("HTTP_X_EXPECTED_ENTITY_LENGTH")
    size = int(declared) if declared and declared.isdigit() else None
    if size is not None:
        with dav_errors():
            s.ctx.chunks.check_room(s.principal, size)

    async def store(pieces: AsyncIterator[tuple[str, bytes]]) -> None:
        room = await s.ctx.chunks.room_check(s.principal)
        await s.ctx.chunks.store_cut(s.principal, pieces, room)

    return UploadStream(s.bridge, store)


def client_mtime(raw: str | None) -> float | None:
    """The modification time a client sends with a PUT (``X-OC-Mtime``: rclone and ownCloud
    clients)."""
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise InvalidInput("X-OC-Mtime must be seconds since 1970.") from exc
    if not 0 <= value < 2**37:
        raise InvalidInput("X-OC-Mtime is out of range.")
    return value


def commit_upload(s: DavSession, path: str, upload: UploadStream, environ: dict[str, Any],
                  checksums: Checksums) -> dict[str, Any]:
    """Wait for the body's chunks to be stored, check ``OC-Checksum``, commit the version."""
    mtime = client_mtime(environ.get("HTTP_X_OC_MTIME"))
    upload.finish()
    stored = StoredFile(size=upload.size, chunks=list(upload.hashes))
    digests = Digests(upload.sha1.hexdigest(), upload.md5.hexdigest())
    return commit_stored(s, path, stored, digests, mtime, environ.get("HTTP_OC_CHECKSUM"),
                         checksums)


def commit_stored(s: DavSession, path: str, stored: StoredFile, digests: Digests,
                  mtime: float | None, oc_checksum: str | None,
                  checksums: Checksums) -> dict[str, Any]:
    """A PUT's body is stored: check what the client said it hashes to (``OC-Checksum``),
    commit the new version and keep its SHA-1 and MD5."""
    for kind, claimed in parse_oc_checksum(oc_checksum).items():
        actual = getattr(digests, kind)
        if claimed != actual:
            raise InvalidInput(f"The body's {kind.upper()} is {actual}, "
                               f"not {claimed} (OC-Checksum).")
    return s.files().commit(s.principal, CommitRequest(
        path=path, size=stored.size, chunks=stored.chunks, parent_version=None, mtime=mtime,
        device=DEVICE, overwrite=True), then=checksums.recorder(digests), mounts=s.mount_list())


def copy_file(s: DavSession, src: str, dest: str) -> dict[str, Any]:
    """COPY of a file; no bytes move. To a new name it is the API's server-side copy (into
    or out of a shared folder too, charged to the destination's owner). Over an existing
    file (``Overwrite: T``) it is a new version of it made of the source's chunks, which the
    caller must hold (the commit checks)."""
    try:
        s.ctx.files.metadata(s.principal, dest)
    except NotFound:
        return s.ctx.files.copy(s.principal, src, dest)
    entry, chunk_list = s.ctx.files.content(s.principal, src, None)
    return s.ctx.files.commit(s.principal, CommitRequest(
        path=dest, size=int(entry["size"]), chunks=[h for h, _ in chunk_list],
        parent_version=None, mtime=entry["modified"], device=DEVICE, overwrite=True))


def list_children(s: DavSession, folder: str, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` entries of ``folder``, read page by page."""
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(rows) < limit:
        page = s.ctx.files.listing(s.principal, folder, False, limit - len(rows), cursor)
        rows += page["entries"]
        cursor = page["cursor"]
        if cursor is None:
            break
    return rows
