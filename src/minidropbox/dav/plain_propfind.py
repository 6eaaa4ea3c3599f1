"""A ``PROPFIND`` (``Depth: 0``, or ``1`` for a folder's listing) that asks for properties
of the entry rows, answered without the WebDAV library.

rclone (``vendor=owncloud``) sends one of a file after every file it uploads, to read back
its size, time and ``oc:checksums``, and one of a folder to list it, as file managers do.
Through a2wsgi and wsgidav each cost a worker thread, a WSGI environ, wsgidav's middleware
and request dispatch and a resource object per entry: about 5 ms of the API's CPU for one
file against 0.6 ms for a trivial API route. Here the caller, their mount points, the entry
(and a folder's entries), their checksums and their dead properties are read in one thread
hop and one read transaction (``DavGate._propfind``), and the multistatus is built with wsgidav's
own XML helpers from the values wsgidav's resources give (``provider.py``): the answer is
the library's (without its second ``Date`` header).

Left to wsgidav, untouched: any request with a condition (``If``, ``If-Match``, ...); a body
that is not one ``prop`` list of names in ``ANSWERED`` (``allprop``, ``propname``, an empty
or undeclared body, lock and quota properties, any other name); a path that is not there
(404); a folder over ``dav_max_propfind_entries`` (403); and any resource listed that holds
a dead property under a name asked for. ``oc:permissions``, which rclone asks for, is not one
the provider knows: wsgidav looks it up among the dead properties, 404 when absent, as here.
The dead properties of everything listed are looked for in one query per namespace.
"""

from __future__ import annotations

import mimetypes
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection
from starlette.types import Scope, Send
from wsgidav import util, xml_tools
from wsgidav.dav_error import HTTP_NOT_FOUND, DAVError

from minidropbox.core.errors import InvalidPath, NotFound
from minidropbox.core.paths import name_of, normalize_path, path_key
from minidropbox.dav.checksums import (
    OC_CHECKSUMS,
    OWNCLOUD_NS,
    Checksums,
    Digests,
    checksums_element,
)
from minidropbox.dav.session import DavSession
from minidropbox.metadata import dav as dav_repo
from minidropbox.metadata import entries
from minidropbox.service.files import public_entry

# Headers that ask the protocol to judge something first: left to wsgidav.
CONDITIONS = ("if", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since",
              "destination")
OC_PERMISSIONS = f"{{{OWNCLOUD_NS}}}permissions"
LIVE = frozenset({"{DAV:}displayname", "{DAV:}getlastmodified", "{DAV:}getcontentlength",
                  "{DAV:}resourcetype", "{DAV:}getcontenttype", "{DAV:}getetag",
                  "{DAV:}creationdate"})
ANSWERED = LIVE | {OC_CHECKSUMS, OC_PERMISSIONS}
HREF_SAFE = "/" + "!*'()," + "$-_|."  # what wsgidav's ``get_href`` leaves unquoted


def plain_propfind_path(scope: Scope, headers: dict[str, str], prefix: str,
                        max_body: int) -> str | None:
    """The path in the caller's tree of a PROPFIND this module may answer, else None. Its
    body must be declared (wsgidav reads no body without a ``Content-Length``: allprop)."""
    if scope["method"].upper() != "PROPFIND" or any(h in headers for h in CONDITIONS):
        return None
    declared = headers.get("content-length", "")
    if headers.get("depth") not in ("0", "1") or not declared.isdigit() or \
            not 0 < int(declared) <= max_body or "transfer-encoding" in headers:
        return None
    try:
        return normalize_path(scope["path"][len(prefix):] or "/")
    except InvalidPath:
        return None


def requested(body: bytes) -> list[str] | None:
    """The property names of a ``<propfind><prop>...</prop></propfind>`` body, in order,
    if every one is in ``ANSWERED``; else None. ``body`` carries no DTD (the gate refused
    it); it is parsed by wsgidav's parser (defusedxml or lxml without entities)."""
    try:
        if xml_tools.use_lxml:
            root = xml_tools.etree.XML(
                body, parser=xml_tools.etree.XMLParser(resolve_entities=False))
        else:
            root = xml_tools.etree.fromstring(body)
    except Exception:
        return None  # 400 from wsgidav
    if root.tag != "{DAV:}propfind" or len(root) != 1 or root[0].tag != "{DAV:}prop":
        return None
    names = [node.tag for node in root[0]]
    if not names or not all(isinstance(n, str) and n in ANSWERED for n in names):
        return None
    return names


def multistatus(s: DavSession, checksums: Checksums, conn: Connection, prefix: str,
                path: str, depth: str, names: list[str]) -> bytes | None:
    """The 207 body wsgidav would send for ``names`` of ``path`` (and, at ``Depth: 1``, of
    a folder's entries), read in ``conn`` (which also looked up the caller); None to let
    wsgidav answer."""
    try:
        entry = s.metadata_in(conn, path)
    except NotFound:
        return None  # wsgidav's 404
    listed = [entry]
    if depth == "1" and _is_folder(entry):
        children = _children(s, conn, entry["path"])
        if children is None:
            return None  # wsgidav's 403: list it through the API
        listed += children
    if _dead_property_asked(s, conn, listed, names):
        return None  # before the checksums: wsgidav answers and reads its own
    digests: dict[str, Digests] = {}
    if OC_CHECKSUMS in names:
        digests = checksums.of_many([e["content_hash"] for e in listed
                                     if not _is_folder(e) and e["content_hash"]], conn)
    answer = xml_tools.make_multistatus_el()
    for e in listed:
        folder = _is_folder(e)
        held = digests.get(e["content_hash"] or "")
        util.add_property_response(answer, _href(prefix, e["path"], folder),
                                   [(n, _value(n, e, folder, held)) for n in names])
    body: bytes = xml_tools.xml_to_bytes(answer, pretty=False)
    return body


def _dead_property_asked(s: DavSession, conn: Connection, listed: list[dict[str, Any]],
                         names: list[str]) -> bool:
    """Whether a resource listed holds a dead property under a name asked for that the
    provider does not answer itself (wsgidav reads those from the dead properties, 404 when
    absent; one stored is wsgidav's to answer). One query per namespace listed."""
    asked: dict[int, list[tuple[str, list[str]]]] = {}
    for e in listed:
        dead = [n for n in names
                if n == OC_PERMISSIONS or (_is_folder(e) and n == OC_CHECKSUMS)]
        if dead:
            namespace, where = s.where(e["path"])
            asked.setdefault(namespace, []).append((path_key(where), dead))
    for namespace, wanted in asked.items():
        held = dav_repo.names_held(conn, namespace, [key for key, _ in wanted],
                                   [n for _, dead in wanted for n in dead])
        if any((key, n) in held for key, dead in wanted for n in dead):
            return True
    return False


def _is_folder(entry: dict[str, Any]) -> bool:
    return bool(entry["type"] == "folder")  # as ``MiniDropboxProvider.resource_for``


def _children(s: DavSession, conn: Connection, folder: str) -> list[dict[str, Any]] | None:
    """``upload.list_children`` of ``folder`` (the caller's listing, a shared folder's
    entries shown at their path in the caller's tree) read in ``conn``; None past
    ``dav_max_propfind_entries``."""
    limit = s.ctx.settings.dav_max_propfind_entries
    t = s.files().resolve(s.principal, folder, s.mount_list(conn))
    rows = entries.listed_children(conn, t.principal.namespace_id, t.path, recursive=False,
                                   after=None, limit=limit + 1)
    if len(rows) > limit:
        return None
    return [t.shown(public_entry(r)) for r in rows]


def _href(prefix: str, path: str, folder: bool) -> str:
    """``_DAVResource.get_href``: the preferred path (a folder's with its slash), quoted."""
    preferred = "/" if path == "/" else path + "/" if folder else path
    return quote(prefix + preferred, safe=HREF_SAFE)


def _value(name: str, entry: dict[str, Any], folder: bool, digests: Digests | None) -> Any:
    """What ``_DAVResource.get_property_value`` gives for ``name`` of our file or folder
    resource: a string, an element, or the DAVError that makes a 404 propstat."""
    modified = entry["modified"] or None  # ``get_last_modified``, ``get_creation_date``
    missing = DAVError(HTTP_NOT_FOUND)
    if name == "{DAV:}resourcetype":
        if not folder:
            return ""
        element = xml_tools.etree.Element(name)
        xml_tools.etree.SubElement(element, "{DAV:}collection")
        return element
    if name == "{DAV:}displayname":
        return name_of(entry["path"])
    if name == "{DAV:}getlastmodified":
        return missing if modified is None else util.get_rfc1123_time(modified)
    if name == "{DAV:}creationdate":
        return missing if modified is None else util.get_rfc3339_time(modified)
    if folder:  # no length, type, ETag or checksums; oc:permissions is not stored
        return missing
    if name == "{DAV:}getcontentlength":
        return str(int(entry["size"] or 0))
    if name == "{DAV:}getcontenttype":
        return mimetypes.guess_type(entry["path"])[0] or "application/octet-stream"
    if name == "{DAV:}getetag":
        return entry["content_hash"] or missing
    if name == OC_CHECKSUMS:
        return missing if digests is None else checksums_element(digests)
    return missing  # oc:permissions, not stored


async def send_multistatus(send: Send, body: bytes) -> None:
    """wsgidav's ``send_multi_status_response``: 207 with its headers (but a second ``Date``:
    the server sends one)."""
    await send({"type": "http.response.start", "status": 207, "headers": [
        (b"content-type", b"application/xml; charset=utf-8"),
        (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
