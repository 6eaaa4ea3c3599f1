"""An ``MKCOL`` of something that already exists under ``/dav/``, refused on the event loop
without the WebDAV library.

``rclone copy`` sends an MKCOL of a file's folder before it uploads the file, and that folder
almost always exists. wsgidav answered that 405 only after a2wsgi's thread hop, its middleware
stack and lookups of its own: several times the API CPU of a trivial route, once per file
uploaded. Here the caller and the entry are read in one thread hop and one read transaction
(``DavGate._mkcol_target``, as for a plain PUT) and the 405 is sent from the loop.

Taken only where wsgidav would answer 405 with nothing else to judge first
(``RequestServer.do_MKCOL`` checks the body, 415, then the depth, 400, then whether the name
is mapped, 405): no body (no ``Content-Length`` but 0, no ``Transfer-Encoding``), ``Depth``
absent or 0, and a valid path naming an entry of the caller's tree — a folder, a file, the
root, a shared folder's mount point. A new name, a missing parent (409), a body or another
depth go to wsgidav as before.

The answer (``DavGate``) is the one wsgidav's 405 gets from ``JsonErrors``
(``error_pages.py``): the product's JSON error body and the ``Allow`` header of what the entry
does allow, so clients (rclone, Finder, litmus ``mkcol_again``) see the same whichever path
answered.
"""

from __future__ import annotations

from sqlalchemy import Connection
from starlette.types import Scope

from minidropbox.core.errors import InvalidPath, MiniDropboxError
from minidropbox.core.paths import normalize_path
from minidropbox.dav.session import DavSession

EXISTS = "MKCOL can only be executed on an unmapped URL."  # wsgidav's words


def plain_mkcol_path(scope: Scope, headers: dict[str, str], prefix: str) -> str | None:
    """The path in the caller's tree of an MKCOL this module may refuse, else None."""
    if scope["method"].upper() != "MKCOL" or "transfer-encoding" in headers:
        return None
    if headers.get("content-length", "0") != "0" or headers.get("depth", "0") != "0":
        return None
    try:
        return normalize_path(scope["path"][len(prefix):] or "/")
    except InvalidPath:
        return None


def kind_in(s: DavSession, path: str, conn: Connection) -> str | None:
    """What ``path`` names in the caller's tree ("file" or "folder"; None: nothing), read in
    ``conn`` (the request's read transaction, which also looked up the caller)."""
    try:
        entry = s.metadata_in(conn, path)
    except MiniDropboxError:
        return None  # not there (or not for this module to judge): wsgidav's answer
    return "folder" if entry["type"] == "folder" else "file"
