"""A plain ``PUT`` of a file under ``/dav/``, received on the event loop without the WebDAV
library.

Through wsgidav a PUT's body crossed from the loop to a worker thread one ASGI message at a
time (a thread hop and two copies each) before it was cut, and crossed back chunk by chunk to
be stored. Here the body is read on the loop in batches of about 1 MiB; each batch is cut and
hashed (``StreamCutter``) in one worker thread while the SHA-1 and MD5 for ``oc:checksums``
are taken in another, and the chunks go to ``ChunkService.store_cut`` as they are cut. A body
shorter than the smallest chunk (most files) is one chunk: hashed on the loop, no thread.

What the protocol decides stays the protocol's: a PUT is taken here only when wsgidav would
take it without a condition to judge — no ``If``/``If-*`` header, no ``Content-Range`` or
``Content-Encoding``, the parent is a folder and the target not one, and no lock stands in
the way (wsgidav's own lock manager checks the target, and for a new file its parent, with
no tokens, then marks the target as being written until the commit, as wsgidav does). Any of
those, and the request goes to wsgidav untouched, so its answers (412, 409, 405, 423 with
its error body) stay the library's. The commit is the one the wsgidav path makes
(``upload.commit_stored``): the same version, quota, journal, notification and checksum rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send
from wsgidav.dav_error import DAVError
from wsgidav.lock_man.lock_manager import LockManager

from minidropbox.core.chunking import MIN_CHUNK, StreamCutter
from minidropbox.core.errors import InvalidPath, NotFound
from minidropbox.core.paths import join, name_of, normalize_path, parent_of
from minidropbox.dav.checksums import INLINE_BYTES, BodyDigests, Checksums, Digests
from minidropbox.dav.provider import ref_url
from minidropbox.dav.session import DavSession
from minidropbox.dav.small_puts import SmallStores
from minidropbox.dav.upload import client_mtime, commit_stored
from minidropbox.service.chunks import StoredFile

# Headers that ask the protocol to judge something first: left to wsgidav.
CONDITIONS = ("if", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since",
              "content-range", "content-encoding")
BATCH_BYTES = 1024 * 1024  # body bytes cut (and digested) per thread hop


class ClientGone(Exception):
    """The client went away before the whole body was in."""


def plain_put_path(scope: Scope, headers: dict[str, str], prefix: str) -> str | None:
    """The path in the caller's tree of a PUT this module may take, else None."""
    if scope["method"].upper() != "PUT" or any(h in headers for h in CONDITIONS):
        return None
    try:
        path = normalize_path(scope["path"][len(prefix):] or "/")
    except InvalidPath:
        return None
    return None if path == "/" else path


@dataclass
class PutTarget:
    path: str  # as stored (an existing file's case), else the parent's path + the new name
    exists: bool
    writing: AbstractContextManager[Any]  # the lock manager's "being written" mark


def plain_target(s: DavSession, locks: LockManager, path: str,
                 conn: Connection | None = None) -> PutTarget | None:
    """Where the PUT writes, checked the way wsgidav checks it; None: let wsgidav answer.
    The mount points, the target and its parent are read in one transaction: ``conn`` (the
    request's, which also looked up the caller) or one of its own. The locks are not: each
    check reads them in a transaction of its own, at the time of the check, as wsgidav's PUT
    does. On SQLite a snapshot is fixed at its first read, so a lock granted and committed
    after the caller was looked up would be missed by a check made in it, and the PUT would
    write under another client's lock."""
    if conn is None:
        with s.ctx.db.read() as own:
            return _target(s, locks, path, own)
    return _target(s, locks, path, conn)


def _target(s: DavSession, locks: LockManager, path: str,
            conn: Connection) -> PutTarget | None:
    files, mounts = s.files(), s.mount_list(conn)
    try:
        entry: dict[str, Any] | None = s.metadata_in(conn, path)
    except NotFound:
        entry = None
    if entry is not None:
        if entry["type"] != "file":
            return None  # 405 (a folder)
        target, lock_parent = entry["path"], None
    else:
        try:
            parent = s.metadata_in(conn, parent_of(path))
        except NotFound:
            return None  # 409: no parent folder
        if parent["type"] != "folder":
            return None
        target, lock_parent = join(parent["path"], name_of(path)), parent["path"]
    # A viewer of a shared folder is refused before any byte is stored (the commit would
    # refuse it after).
    files.resolve(s.principal, target, mounts).writable()
    user = s.principal.username
    try:
        if lock_parent is not None:
            locks.check_write_permission(url=ref_url(*s.where(lock_parent)), depth="0",
                                         token_list=[], principal=user)
        writing = locks.write_transaction(url=ref_url(*s.where(target)), token_list=[],
                                          principal=user)
        writing.__enter__()
    except DAVError:
        return None  # locked: wsgidav answers 423 with the conflicting lock
    return PutTarget(target, entry is not None, writing)


def _declared_size(headers: dict[str, str]) -> int | None:
    declared = headers.get("content-length") or headers.get("x-expected-entity-length")
    return int(declared) if declared and declared.isdigit() else None


async def receive_file(s: DavSession, locks: LockManager, checksums: Checksums, path: str,
                       headers: dict[str, str], receive: Receive, send: Send,
                       small: SmallStores, target: PutTarget | None = None) -> bool:
    """Take the PUT of ``path``; False (nothing read or sent) to hand it to wsgidav.
    ``target``: ``plain_target`` of it if already looked up (marked as being written; it is
    released here)."""
    mtime = client_mtime(headers.get("x-oc-mtime"))
    if target is None:
        target = await run_in_threadpool(plain_target, s, locks, path)
    if target is None:
        return False
    released = False

    def commit(stored: StoredFile, digests: Digests) -> dict[str, Any]:
        # The commit and the end of the "being written" mark in one thread hop.
        nonlocal released
        try:
            return commit_stored(s, target.path, stored, digests, mtime,
                                 headers.get("oc-checksum"), checksums)
        finally:
            released = True
            target.writing.__exit__(None, None, None)

    try:
        try:
            stored, digests = await _store_body(s, receive, _declared_size(headers), small)
        except ClientGone:
            return True  # nobody to answer; what was stored is left to GC
        entry = await run_in_threadpool(commit, stored, digests)
    finally:
        if not released:
            await run_in_threadpool(target.writing.__exit__, None, None, None)
    answer = [(b"etag", f'"{entry["content_hash"]}"'.encode()),
              (b"ms-author-via", b"DAV")]
    if mtime is not None:
        answer.append((b"x-oc-mtime", b"accepted"))
    if target.exists:
        await send({"type": "http.response.start", "status": 204,
                    "headers": [(b"content-length", b"0"), *answer]})
        await send({"type": "http.response.body", "body": b""})
        return True
    content_type, body = DAVError(201).get_response_page()  # wsgidav's own 201 page
    await send({"type": "http.response.start", "status": 201, "headers": [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()), *answer]})
    await send({"type": "http.response.body", "body": body})
    return True


async def _batches(receive: Receive) -> AsyncIterator[list[bytes]]:
    """The body in batches of about ``BATCH_BYTES`` (the blocks as they came, not joined)."""
    blocks: list[bytes] = []
    held = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        body = message.get("body", b"")
        more = bool(message.get("more_body", False))
        if body:
            blocks.append(body)
            held += len(body)
        if held >= BATCH_BYTES or not more:
            yield blocks
            blocks, held = [], 0


async def _store_body(s: DavSession, receive: Receive, declared: int | None,
                      small: SmallStores) -> tuple[StoredFile, Digests]:
    """Read, cut and store the body (counted against the quota); its chunk list and its
    SHA-1/MD5."""
    chunks = s.ctx.chunks
    # Without a quota there is nothing to judge (and no thread hop to take to judge it).
    room = (await chunks.room_check(s.principal, declared)
            if s.principal.quota_bytes is not None else None)
    digests = BodyDigests()
    body = _batches(receive)
    head: list[bytes] = []  # the body while it is shorter than the smallest chunk
    held = 0
    while held < MIN_CHUNK:  # FastCDC never cuts before MIN_CHUNK: nothing to cut yet
        blocks = await anext(body, None)
        if blocks is None:
            # A body shorter than the smallest chunk (most files) is one chunk, hashed on
            # the loop, stored with the account's other small PUTs in flight.
            if not held:
                return StoredFile(size=0, chunks=[]), await digests.result()
            data = b"".join(head)
            digest = (hashlib.sha256(data).hexdigest() if len(data) < INLINE_BYTES
                      else await run_in_threadpool(_sha256, data))
            await small.store(s.principal, digest, data, room)
            return StoredFile(size=len(data), chunks=[digest]), await digests.result()
        await digests.add(blocks)
        head.extend(blocks)
        held += sum(len(b) for b in blocks)

    cutter = StreamCutter()

    def feed(blocks: list[bytes]) -> list[tuple[str, bytes]]:
        return [piece for block in blocks for piece in cutter.feed(block)]

    async def pieces() -> AsyncIterator[tuple[str, bytes]]:
        for piece in await run_in_threadpool(feed, head):
            yield piece
        async for blocks in body:
            await digests.add(blocks)
            for piece in await run_in_threadpool(feed, blocks):
                yield piece
        for piece in await run_in_threadpool(cutter.finish):
            yield piece

    await chunks.store_cut(s.principal, pieces(), room)
    return StoredFile(size=cutter.size, chunks=list(cutter.hashes)), await digests.result()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
