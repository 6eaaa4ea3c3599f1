"""A plain ``GET`` of a file under ``/dav/``, answered on the event loop without the WebDAV
library.

wsgidav runs in worker threads and reads a file through a file object: every block of a
download crossed from the loop to a thread (``ChunkReader``) and back again (the WSGI
bridge's send queue), a handful of thread hops and a copy per MiB. A whole-file download is
what rclone, curl and file managers do most, and it needs nothing of the protocol: the same
verified chunk stream as the API's download route goes straight to the socket.

Anything else — ranges, conditional headers, lock tokens (``If``), a folder, a path that is
not there or not valid — goes to wsgidav as before, so its answers (304, 412, 206, 404, 403)
stay the library's.
"""

from __future__ import annotations

import mimetypes
from email.utils import formatdate

from starlette.concurrency import run_in_threadpool
from starlette.types import Scope, Send

from minidropbox.core.errors import InvalidPath, MiniDropboxError
from minidropbox.core.paths import normalize_path
from minidropbox.dav.session import DavSession

# Headers that ask for more than the whole current file: left to wsgidav.
CONDITIONS = ("range", "if-range", "if-match", "if-none-match", "if-modified-since",
              "if-unmodified-since", "if", "content-length", "transfer-encoding")


def plain_path(scope: Scope, headers: dict[str, str], prefix: str) -> str | None:
    """The path in the caller's tree of a GET this module answers, else None."""
    if scope["method"].upper() != "GET" or any(h in headers for h in CONDITIONS):
        return None
    if headers.get("depth", "0") != "0":
        return None
    try:
        return normalize_path(scope["path"][len(prefix):] or "/")
    except InvalidPath:
        return None


async def send_file(session: DavSession, path: str, send: Send) -> bool:
    """Answer with the file at ``path``; False (nothing sent) if it is not one to answer
    here, so the caller hands the request to wsgidav."""
    s = session
    try:
        entry, chunk_list = await run_in_threadpool(s.files().content, s.principal, path, None)
    except MiniDropboxError:
        return False  # not found, a folder, ...: wsgidav's own answer
    if entry.get("type", "file") != "file":
        return False
    size = int(entry["size"] or 0)
    headers = [(b"content-length", str(size).encode()),
               (b"content-type", (mimetypes.guess_type(entry["path"])[0]
                                  or "application/octet-stream").encode()),
               (b"accept-ranges", b"bytes")]
    if entry["content_hash"]:
        headers.append((b"etag", f'"{entry["content_hash"]}"'.encode()))
    if entry["modified"]:
        headers.append((b"last-modified", formatdate(entry["modified"], usegmt=True).encode()))
    stream = s.ctx.chunks.stream(chunk_list, 0, size - 1) if size else None
    # The first block before the answer starts, so an unreadable file is a clean 503.
    first = await anext(stream) if stream is not None else b""
    try:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if stream is not None:
            await send({"type": "http.response.body", "body": first, "more_body": True})
            async for block in stream:  # views of verified chunks, written as they are
                await send({"type": "http.response.body", "body": block, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        if stream is not None:
            await stream.aclose()  # a client that went away: stop the fetches ahead
    return True
