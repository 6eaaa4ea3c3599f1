"""Writes through WebDAV: a spooled PUT cut into chunks and committed, and COPY by chunk list.

The same steps as the API's streamed ``PUT /api/v1/files/content``: the body is spooled,
cut with the shared chunker, each chunk stored through ``ChunkService`` (verified, R copies,
quota), then one ``FileService`` commit makes the new version.
"""

from __future__ import annotations

from typing import Any

from wsgidav.dav_error import DAVError

from minidropbox.core.chunking import iter_chunks
from minidropbox.core.errors import PayloadTooLarge, QuotaExceeded
from minidropbox.dav.bridge import SpoolWriter
from minidropbox.dav.checksums import Checksums, Digests, parse_oc_checksum
from minidropbox.dav.session import DavSession
from minidropbox.service.files import CommitRequest

DEVICE = "webdav"


def check_quota(s: DavSession, size: int) -> None:
    """Refuse an upload that cannot fit before its body is read (507, or 413 when it is
    larger than the whole quota); the chunk writes check again as the bytes arrive."""
    quota = s.principal.quota_bytes
    if quota is None:
        return
    if size > quota:
        raise PayloadTooLarge("The file is larger than the account's whole quota.")
    used = s.ctx.files.used_bytes(s.principal)
    if used + size > quota:
        raise QuotaExceeded(f"This upload needs {size} bytes but only "
                            f"{max(0, quota - used)} of your quota are left.")


def client_mtime(environ: dict[str, Any]) -> float | None:
    """The modification time a client sends with a PUT (rclone and ownCloud clients)."""
    raw = environ.get("HTTP_X_OC_MTIME")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise DAVError(400, context_info="X-OC-Mtime must be seconds since 1970.") from exc
    if not 0 <= value < 2**37:
        raise DAVError(400, context_info="X-OC-Mtime is out of range.")
    return value


def commit_spool(s: DavSession, path: str, spool: SpoolWriter, environ: dict[str, Any],
                 checksums: Checksums) -> dict[str, Any]:
    """Store the spooled body's chunks and commit it as the file's next version."""
    digests = Digests(spool.sha1.hexdigest(), spool.md5.hexdigest())
    for kind, claimed in parse_oc_checksum(environ.get("HTTP_OC_CHECKSUM")).items():
        actual = getattr(digests, kind)
        if claimed != actual:
            raise DAVError(400, context_info=f"The body's {kind.upper()} is {actual}, "
                                             f"not {claimed} (OC-Checksum).")
    mtime = client_mtime(environ)
    check_quota(s, spool.size)
    hashes: list[str] = []
    with spool.path.open("rb") as fh:
        for ref, data in iter_chunks(fh):
            hashes.append(ref.hash)
            s.bridge.run(s.ctx.chunks.store(s.principal, ref.hash, bytes(data)))
    entry = s.ctx.files.commit(s.principal, CommitRequest(
        path=path, size=spool.size, chunks=hashes, parent_version=None, mtime=mtime,
        device=DEVICE, overwrite=True))
    checksums.record(entry["content_hash"], digests)
    return entry


def copy_file(s: DavSession, src: str, dest: str) -> dict[str, Any]:
    """COPY of a file: a new version at ``dest`` made of the source's chunks (no bytes move;
    the caller owns them already, which is what the commit checks)."""
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
