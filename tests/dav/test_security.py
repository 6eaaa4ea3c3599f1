"""WebDAV security: paths and Destinations that leave the caller's tree or this server, depth
bombs, oversized and entity-laden XML — all refused, none with a 5xx; and one user's files
are invisible to another."""

from __future__ import annotations

import base64
import http.client
from urllib.parse import urlsplit

import httpx
import pytest

from tests.dav.conftest import DavUser, new_dav_user
from tests.harness import TestCluster

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x xmlns="urn:x">&lol9;</x></D:prop></D:set>
</D:propertyupdate>"""


def _proppatch(name: str, value: str) -> bytes:
    return (f'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
            f'<{name} xmlns="urn:test">{value}</{name}></D:prop></D:set>'
            f"</D:propertyupdate>").encode()


@pytest.fixture
def seeded(dav: httpx.Client) -> httpx.Client:
    assert dav.put("/dav/secret.txt", content=b"mine").status_code == 201
    assert dav.request("MKCOL", "/dav/folder").status_code == 201
    return dav


@pytest.mark.parametrize("raw_path", [
    "/dav/../api/v1/auth/me", "/dav/%2e%2e/%2e%2e/etc/passwd", "/dav/folder/%2E%2E/secret.txt",
    "/dav/folder/..%2f..%2fsecret.txt", "/dav/a\\..\\b",
])
def test_paths_that_climb_out_are_refused(seeded: httpx.Client, dav_user: DavUser,
                                          raw_path: str) -> None:
    # http.client sends the path as written (httpx would remove the dot segments itself).
    url = urlsplit(dav_user.base)
    token = base64.b64encode(f"{dav_user.username}:{dav_user.app_password}".encode()).decode()
    for method in ("GET", "PROPFIND", "DELETE"):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        conn.request(method, raw_path, headers={"Authorization": f"Basic {token}",
                                                "Depth": "0"})
        status = conn.getresponse().status
        conn.close()
        assert status in (400, 404), (method, raw_path, status)
    assert seeded.get("/dav/secret.txt").content == b"mine"


@pytest.mark.parametrize("destination,status", [
    ("http://evil.example/dav/moved.txt", 403),
    ("https://evil.example:443/dav/moved.txt", 403),
    ("{base}/api/v1/files/moved.txt", 403),
    ("{base}/dav/../api/moved.txt", 400),
    ("{base}/dav/folder/%2e%2e/%2e%2e/moved.txt", 400),
    ("/elsewhere/moved.txt", 403),
])
def test_destinations_off_this_tree_are_refused(seeded: httpx.Client, dav_user: DavUser,
                                                destination: str, status: int) -> None:
    for method in ("MOVE", "COPY"):
        r = seeded.request(method, "/dav/secret.txt",
                           headers={"Destination": destination.format(base=dav_user.base)})
        assert r.status_code == status, (method, destination, r.text)
    assert seeded.get("/dav/secret.txt").content == b"mine"


def test_depth_infinity_is_refused(seeded: httpx.Client) -> None:
    for headers in ({"Depth": "infinity"}, {}, {"Depth": "99"}):
        r = seeded.request("PROPFIND", "/dav/", headers=headers)
        assert r.status_code == 403, headers
        assert b"propfind-finite-depth" in r.content
    assert seeded.request("PROPFIND", "/dav/", headers={"Depth": "1"}).status_code == 207


def test_huge_xml_bodies_are_refused(seeded: httpx.Client) -> None:
    huge = _proppatch("big", "x" * (2 * 1024 * 1024))
    r = seeded.request("PROPPATCH", "/dav/secret.txt", content=huge)
    assert r.status_code == 413
    # Streamed without a length: stopped at the cap all the same.
    r = seeded.request("PROPPATCH", "/dav/secret.txt", content=iter([huge]))
    assert r.status_code == 413
    r = seeded.request("PROPFIND", "/dav/", headers={"Depth": "0"}, content=huge)
    assert r.status_code == 413


def test_entity_expansion_is_refused(seeded: httpx.Client) -> None:
    for method in ("PROPPATCH", "PROPFIND", "LOCK"):
        r = seeded.request(method, "/dav/secret.txt", content=BILLION_LAUGHS,
                           headers={"Depth": "0"})
        assert r.status_code == 400, (method, r.text)
    external = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                b'<D:propfind xmlns:D="DAV:"><D:prop>&e;</D:prop></D:propfind>')
    r = seeded.request("PROPFIND", "/dav/", headers={"Depth": "0"}, content=external)
    assert r.status_code == 400 and b"root:" not in r.content


def test_dead_properties_per_resource_are_bounded(seeded: httpx.Client) -> None:
    body = (b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
            + b"".join(f'<p{i} xmlns="urn:t">v</p{i}>'.encode() for i in range(250))
            + b"</D:prop></D:set></D:propertyupdate>")
    r = seeded.request("PROPPATCH", "/dav/secret.txt", content=body)
    assert r.status_code == 207 and b"507" in r.content, r.text
    listed = seeded.request("PROPFIND", "/dav/secret.txt", headers={"Depth": "0"},
                            content=b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:">'
                                    b"<D:propname/></D:propfind>")
    assert listed.content.count(b"urn:t") <= 200


def test_malformed_requests_get_4xx(seeded: httpx.Client) -> None:
    cases = [
        ("PROPFIND", "/dav/", {"Depth": "1"}, b"<not-xml"),
        ("PROPPATCH", "/dav/secret.txt", {}, b"<D:propertyupdate xmlns:D='DAV:'>"),
        ("LOCK", "/dav/secret.txt", {"Timeout": "Second-x"}, b"garbage"),
        ("PUT", "/dav/secret.txt", {"X-OC-Mtime": "yesterday"}, b"x"),
        ("PUT", "/dav/secret.txt", {"OC-Checksum": "SHA1:" + "0" * 40}, b"x"),
        ("PUT", "/dav/no/such/folder/f.txt", {}, b"x"),
        ("MKCOL", "/dav/no/such/folder", {}, b""),
        ("MOVE", "/dav/secret.txt", {}, b""),
        ("COPY", "/dav/missing.txt", {"Destination": "/dav/x.txt"}, b""),
        ("DELETE", "/dav/", {}, b""),
        ("UNLOCK", "/dav/secret.txt", {"Lock-Token": "<opaquelocktoken:nope>"}, b""),
    ]
    for method, path, headers, body in cases:
        r = seeded.request(method, path, headers=headers, content=body)
        assert 400 <= r.status_code < 500, (method, path, r.status_code, r.text)


def test_other_users_files_are_invisible(dav_cluster: TestCluster, seeded: httpx.Client) -> None:
    intruder = new_dav_user(dav_cluster.url, "intruder")
    with intruder.client() as c:
        assert c.get("/dav/secret.txt").status_code == 404
        listing = c.request("PROPFIND", "/dav/", headers={"Depth": "1"})
        assert listing.status_code == 207 and b"secret.txt" not in listing.content
        assert c.request("DELETE", "/dav/secret.txt").status_code == 404
        # The same name in the intruder's tree is the intruder's own file.
        assert c.put("/dav/secret.txt", content=b"theirs").status_code == 201
        lock = c.request("LOCK", "/dav/secret.txt", content=(
            b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
            b"</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"))
        assert lock.status_code == 200
    # The intruder's lock on their /secret.txt does not lock the owner's.
    assert seeded.put("/dav/secret.txt", content=b"mine, again").status_code == 204
    assert seeded.get("/dav/secret.txt").content == b"mine, again"


def test_shared_locks_per_resource_are_bounded(seeded: httpx.Client) -> None:
    from minidropbox.dav.locks import MAX_LOCKS_PER_ROOT

    shared = (b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:shared/>'
              b"</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>")
    for _ in range(MAX_LOCKS_PER_ROOT):
        r = seeded.request("LOCK", "/dav/secret.txt", content=shared,
                           headers={"Timeout": "Second-60"})
        assert r.status_code == 200, r.text
    r = seeded.request("LOCK", "/dav/secret.txt", content=shared)
    assert r.status_code == 507, r.text
    listed = seeded.request("PROPFIND", "/dav/secret.txt", headers={"Depth": "0"})
    assert listed.content.count(b"opaquelocktoken:") == MAX_LOCKS_PER_ROOT
