"""A PROPFIND of row properties (Depth 0, or a listing) is answered beside wsgidav
(dav/plain_propfind.py): its answer must be the library's, property by property, for files,
folders, a shared folder's mount point, Unicode and URL-hostile names, an empty file and
dead properties."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import event

from minidropbox.api.app import create_app
from minidropbox.dav.plain_propfind import plain_propfind_path, requested
from minidropbox.settings import Settings
from tests.conftest import PASSWORD, bearer
from tests.dav.conftest import DavUser, new_dav_user
from tests.dav.test_shared_folders import _share
from tests.harness import TestCluster

# What rclone (vendor=owncloud) sends after every upload, verbatim.
RCLONE = b"""<?xml version="1.0"?>
<d:propfind  xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns">
 <d:prop>
  <d:displayname />
  <d:getlastmodified />
  <d:getcontentlength />
  <d:resourcetype />
  <oc:checksums />
  <oc:permissions />
 </d:prop>
</d:propfind>
"""
EVERY = (b'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:" '
         b'xmlns:oc="http://owncloud.org/ns"><D:prop><D:creationdate/><D:getcontenttype/>'
         b"<D:getetag/><D:getlastmodified/><D:displayname/><D:resourcetype/>"
         b"<D:getcontentlength/><oc:checksums/><oc:permissions/></D:prop></D:propfind>")
# One more name, of no one's: wsgidav answers the request (404 for that name).
UNKNOWN = b'<x:nobody xmlns:x="urn:x"/>'


def _to_wsgidav(body: bytes) -> bytes:
    return body.replace(b"</d:prop>", UNKNOWN + b"</d:prop>") \
        .replace(b"</D:prop>", UNKNOWN + b"</D:prop>")


def _parsed(r: httpx.Response) -> dict[str, dict[str, tuple[str, bytes]]]:
    """href -> property name -> (status line, the property serialized)."""
    assert r.status_code == 207, r.text
    assert r.headers["content-type"] == "application/xml; charset=utf-8"
    found: dict[str, dict[str, tuple[str, bytes]]] = {}
    for response in ET.fromstring(r.content).iter("{DAV:}response"):
        props = found.setdefault(response.findtext("{DAV:}href") or "", {})
        for propstat in response.iter("{DAV:}propstat"):
            status = propstat.findtext("{DAV:}status") or ""
            for prop in propstat.find("{DAV:}prop") or []:
                props[prop.tag] = (status, ET.tostring(prop))
    return found


def _both(c: httpx.Client, url: str, body: bytes, depth: str = "0") -> tuple[Any, Any]:
    fast = c.request("PROPFIND", url, headers={"Depth": depth}, content=body)
    library = c.request("PROPFIND", url, headers={"Depth": depth}, content=_to_wsgidav(body))
    theirs = _parsed(library)
    for props in theirs.values():
        assert props.pop("{urn:x}nobody")[0] == "HTTP/1.1 404 Not Found"
    return _parsed(fast), theirs


NAMES = ["a.txt", "empty.txt", "ünïcødé/日本語.txt", "100% real #1 (draft).txt",
         "emoji 🎉/party file.md", "noext"]


def test_answers_are_wsgidavs_property_by_property(dav_cluster: TestCluster) -> None:
    owner, member = new_dav_user(dav_cluster.url), new_dav_user(dav_cluster.url)
    with owner.client() as c:
        assert c.request("MKCOL", "/dav/team/").status_code == 201
        assert c.put("/dav/team/plan.txt", content=b"plan").status_code == 201
    _share(owner, "/team", member, "editor", "/Team Plans")
    with member.client() as c:
        for name in NAMES:
            parent = name.rpartition("/")[0]
            if parent:
                c.request("MKCOL", f"/dav/{quote(parent)}/")
            r = c.put(f"/dav/{quote(name)}", content=b"" if name == "empty.txt" else name.encode(),
                      headers={"X-OC-Mtime": "1700000000"})
            assert r.status_code == 201, r.text
        # A file with no digests (it never came through WebDAV): oc:checksums is a 404.
        with httpx.Client(base_url=member.base, headers=member.api) as api:
            r = api.put("/api/v1/files/content", params={"path": "/via-api.bin"},
                        content=b"api bytes")
            assert r.status_code in (200, 201), r.text
        urls = ["/dav/", "/dav/ünïcødé/", "/dav/ünïcødé", "/dav/Team Plans",
                "/dav/Team%20Plans/plan.txt", "/dav/via-api.bin", "/dav/A.TXT",
                *(f"/dav/{quote(n)}" for n in NAMES)]
        for url in urls:
            for body in (RCLONE, EVERY):
                fast, library = _both(c, url, body)
                assert fast == library, (url, fast, library)
                assert len(fast) == 1
        # Listings: the root (with the mount point), a shared folder, a folder of one's own,
        # and a file (Depth 1 of a file is the file).
        for url, count in (("/dav/", 9), ("/dav/Team Plans/", 2), ("/dav/ünïcødé", 2),
                           ("/dav/emoji%20%F0%9F%8E%89/", 2), ("/dav/a.txt", 1)):
            for body in (RCLONE, EVERY):
                fast, library = _both(c, url, body, "1")
                assert fast == library, (url, fast, library)
                assert list(fast) == list(library) and len(fast) == count, list(fast)


def test_dead_properties_of_the_names_asked_are_wsgidavs(dav: httpx.Client) -> None:
    assert dav.put("/dav/p.txt", content=b"p").status_code == 201
    fast, library = _both(dav, "/dav/p.txt", RCLONE)
    assert fast == library
    (props,) = fast.values()
    assert props["{http://owncloud.org/ns}permissions"][0] == "HTTP/1.1 404 Not Found"
    r = dav.request("PROPPATCH", "/dav/p.txt", content=(
        b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" '
        b'xmlns:oc="http://owncloud.org/ns"><D:set><D:prop><oc:permissions>RW</oc:permissions>'
        b"</D:prop></D:set></D:propertyupdate>"))
    assert r.status_code == 207 and b"200 OK" in r.content, r.text
    for url, depth in (("/dav/p.txt", "0"), ("/dav/", "1")):
        fast, library = _both(dav, url, RCLONE, depth)
        assert fast == library
        props = fast["/dav/p.txt"]
        assert props["{http://owncloud.org/ns}permissions"][0] == "HTTP/1.1 200 OK"
        assert b">RW<" in props["{http://owncloud.org/ns}permissions"][1]


def test_a_missing_path_and_refused_bodies_are_answered_as_before(dav: httpx.Client) -> None:
    r = dav.request("PROPFIND", "/dav/nothing.txt", headers={"Depth": "0"}, content=RCLONE)
    assert r.status_code == 404
    r = dav.request("PROPFIND", "/dav/", headers={"Depth": "0"},
                    content=b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>' + RCLONE[21:])
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input"
    r = dav.request("PROPFIND", "/dav/", headers={"Depth": "0"}, content=b"<not xml")
    assert r.status_code == 400
    r = dav.request("PROPFIND", "/dav/", headers={"Depth": "0"}, content=RCLONE,
                    auth=("nobody", "wrong"))
    assert r.status_code == 401


@pytest.mark.parametrize(("body", "names"), [
    (RCLONE, ["{DAV:}displayname", "{DAV:}getlastmodified", "{DAV:}getcontentlength",
              "{DAV:}resourcetype", "{http://owncloud.org/ns}checksums",
              "{http://owncloud.org/ns}permissions"]),
    (b'<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>', None),
    (b'<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>', None),
    (b'<D:propfind xmlns:D="DAV:"><D:prop/></D:propfind>', None),
    (b'<D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/></D:prop></D:propfind>', None),
    (b'<D:propfind xmlns:D="DAV:"><D:prop><D:quota-used-bytes/></D:prop></D:propfind>',
     None),
    (b'<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop><D:allprop/></D:propfind>',
     None),
    (_to_wsgidav(RCLONE), None),
    (b"<D:propfind", None),
])
def test_only_prop_lists_of_row_properties_are_answered_here(
        body: bytes, names: list[str] | None) -> None:
    assert requested(body) == names


@pytest.mark.parametrize(("headers", "taken"), [
    ({"depth": "0", "content-length": "10"}, True),
    ({"depth": "1", "content-length": "10"}, True),
    ({"depth": "infinity", "content-length": "10"}, False),
    ({"depth": "0"}, False),  # wsgidav reads no undeclared body: allprop
    ({"depth": "0", "content-length": "0"}, False),
    ({"depth": "0", "content-length": "10", "if": "(<urn:x>)"}, False),
    ({"depth": "0", "content-length": "10", "if-none-match": "*"}, False),
    ({"depth": "0", "content-length": "9999999"}, False),
])
def test_only_unconditional_depth_0_requests_are_taken(headers: dict[str, str],
                                                       taken: bool) -> None:
    scope = {"method": "PROPFIND", "path": "/dav/a/b.txt"}
    assert (plain_propfind_path(scope, headers, "/dav", 4096) == "/a/b.txt") is taken
    assert plain_propfind_path({"method": "GET", "path": "/dav/a"}, headers, "/dav",
                               4096) is None


def test_the_fast_path_is_taken(tmp_path: Path) -> None:
    """rclone's PROPFIND never reaches wsgidav; one that asks for more does, and so does a
    listing past ``dav_max_propfind_entries`` (wsgidav's 403)."""
    asyncio.run(_fast_path_taken(tmp_path))


async def _fast_path_taken(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, dav_max_propfind_entries=1))
    gate: Any = app.router.routes[0].app  # type: ignore[attr-defined]
    library, reached = gate.app, []

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["method"])
        await library(scope, receive, send)
    gate.app = counted
    begun: list[Any] = []
    event.listen(gate.ctx.db.engine, "begin", begun.append)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        r = await c.post("/api/v1/auth/signup", json={"username": "ann", "password": PASSWORD})
        assert r.status_code == 201, r.text
        r = await c.post("/api/v1/auth/login", json={"username": "ann", "password": PASSWORD})
        r = await c.post("/api/v1/app-passwords", headers=bearer(r.json()), json={"name": "x"})
        user = DavUser("ann", r.json()["password"], {}, "http://test")
        assert (await c.request("MKCOL", "/dav/d/", auth=user.auth)).status_code == 201
        assert (await c.put("/dav/d/e.txt", content=b"", auth=user.auth)).status_code == 201
        assert (await c.request("MKCOL", "/dav/d/big/", auth=user.auth)).status_code == 201
        for name in ("x", "y"):
            r = await c.put(f"/dav/d/big/{name}", content=b"", auth=user.auth)
            assert r.status_code == 201
        reached.clear()
        for url, depth in (("/dav/d/e.txt", "0"), ("/dav/d/", "0"), ("/dav/", "0"),
                           ("/dav/", "1")):
            begun.clear()
            r = await c.request("PROPFIND", url, headers={"Depth": depth}, content=RCLONE,
                                auth=user.auth)
            assert r.status_code == 207 and url.encode() in r.content, r.text
            assert len(begun) == 1  # the caller and all the answer needs: one transaction
        assert b"/dav/d/" in r.content
        assert reached == []
        r = await c.request("PROPFIND", "/dav/d/e.txt", headers={"Depth": "0"},
                            content=_to_wsgidav(RCLONE), auth=user.auth)
        assert r.status_code == 207 and reached == ["PROPFIND"]
        r = await c.request("PROPFIND", "/dav/d/big/", headers={"Depth": "1"}, content=RCLONE,
                            auth=user.auth)
        assert r.status_code == 403 and reached == ["PROPFIND", "PROPFIND"]
    await gate.ctx.stop()
    gate.ctx.db.dispose()
