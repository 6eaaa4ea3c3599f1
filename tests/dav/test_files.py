"""WebDAV writes behave exactly as the API's: overwrites are versions, deletes go to the
trash, COPY shares chunks, the quota answers 507; clients' modification times are kept
(X-OC-Mtime, Win32LastModifiedTime); Finder's chunked PUTs and dot files work; ranges and
conditional requests are honoured; quota properties (RFC 4331) are reported."""

from __future__ import annotations

import base64
import hashlib
import http.client
import random
import re
from urllib.parse import urlsplit

import httpx

from tests.dav.conftest import QUOTA, DavUser
from tests.harness import TestCluster

MiB = 1024 * 1024


def _api(user: DavUser) -> httpx.Client:
    return httpx.Client(base_url=user.base, headers=user.api, timeout=60)


def test_overwrite_is_a_version_and_delete_goes_to_the_trash(dav_user: DavUser,
                                                             dav: httpx.Client) -> None:
    assert dav.put("/dav/report.txt", content=b"one").status_code == 201
    put = dav.put("/dav/report.txt", content=b"two")
    assert put.status_code == 204
    with _api(dav_user) as api:
        versions = api.get("/api/v1/files/versions", params={"path": "/report.txt"}).json()
        assert [v["version"] for v in versions["versions"]] == [2, 1]
        assert all(v["device"] == "webdav" for v in versions["versions"])
        got = dav.get("/dav/report.txt")
        assert got.content == b"two"
        meta = api.get("/api/v1/files/metadata", params={"path": "/report.txt"}).json()
        assert got.headers["etag"].strip('"') == meta["content_hash"]
        assert dav.delete("/dav/report.txt").status_code == 204
        trash = api.get("/api/v1/trash").json()["entries"]
        assert [t["path"] for t in trash] == ["/report.txt"]
        assert api.post("/api/v1/trash/restore", json={"path": "/report.txt"}).status_code \
            == 200
    assert dav.get("/dav/report.txt").content == b"two"


def test_copy_shares_chunks_and_move_keeps_history(dav_user: DavUser, dav: httpx.Client,
                                                   dav_cluster: TestCluster) -> None:
    data = random.Random(3).randbytes(3 * MiB)
    assert dav.put("/dav/orig.bin", content=data).status_code == 201
    before = sum(len(dav_cluster.chunk_files(n.name)) for n in dav_cluster.nodes)
    with _api(dav_user) as api:
        used = api.get("/api/v1/auth/me").json()
        assert dav.request("COPY", "/dav/orig.bin",
                           headers={"Destination": "/dav/copy.bin"}).status_code == 201
        assert dav.get("/dav/copy.bin").content == data
        after = sum(len(dav_cluster.chunk_files(n.name)) for n in dav_cluster.nodes)
        assert after == before  # no new chunk on any node: the copy is references
        assert dav.request("MOVE", "/dav/copy.bin",
                           headers={"Destination": "/dav/moved.bin"}).status_code == 201
        dav.put("/dav/moved.bin", content=b"changed")
        versions = api.get("/api/v1/files/versions", params={"path": "/moved.bin"}).json()
        assert [v["version"] for v in versions["versions"]] == [2, 1]
        assert used["username"] == dav_user.username


def test_quota_is_507_and_reported(dav_user: DavUser, dav: httpx.Client) -> None:
    dav.put("/dav/some.bin", content=random.Random(4).randbytes(MiB))
    listing = dav.request("PROPFIND", "/dav/", headers={"Depth": "0"}, content=(
        b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:quota-available-bytes/>'
        b"<D:quota-used-bytes/></D:prop></D:propfind>"))
    used = int(re.search(rb"quota-used-bytes>(\d+)<", listing.content).group(1))  # type: ignore
    free = int(re.search(rb"quota-available-bytes>(\d+)<", listing.content).group(1))  # type: ignore
    assert used >= MiB and used + free == QUOTA, listing.text

    # A declared size that cannot fit is refused before a byte of the body is sent: 413 past
    # the whole quota, 507 past what is left.
    url = urlsplit(dav_user.base)
    token = base64.b64encode(f"{dav_user.username}:{dav_user.app_password}".encode()).decode()
    for size, status in ((QUOTA + 1, 413), (QUOTA - 1000, 507)):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        conn.putrequest("PUT", "/dav/declared.bin")
        conn.putheader("Authorization", f"Basic {token}")
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        assert conn.getresponse().status == status
        conn.close()

    # Finder sends chunked bodies without a length, declaring the size in its own header.
    r = dav.put("/dav/too-big.bin", content=iter([b"x"]),
                headers={"X-Expected-Entity-Length": str(QUOTA - 1000)})
    assert r.status_code == 507, r.text
    assert r.json()["error"]["code"] == "quota_exceeded", r.text
    assert dav.get("/dav/too-big.bin").status_code == 404


def test_client_modification_times_are_kept(dav: httpx.Client) -> None:
    r = dav.put("/dav/old.txt", content=b"from 2001", headers={"X-OC-Mtime": "1000000000"})
    assert r.status_code == 201 and r.headers["x-oc-mtime"] == "accepted"
    assert dav.get("/dav/old.txt").headers["last-modified"] == "Sun, 09 Sep 2001 01:46:40 GMT"
    # Windows Explorer sets it with PROPPATCH after the upload.
    body = (b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" '
            b'xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>'
            b"<Z:Win32LastModifiedTime>Wed, 01 Jan 2020 00:00:00 GMT</Z:Win32LastModifiedTime>"
            b"</D:prop></D:set></D:propertyupdate>")
    r = dav.request("PROPPATCH", "/dav/old.txt", content=body)
    assert r.status_code == 207 and b"200 OK" in r.content, r.text
    assert dav.get("/dav/old.txt").headers["last-modified"] == "Wed, 01 Jan 2020 00:00:00 GMT"


def test_finder_habits(dav: httpx.Client) -> None:
    data = random.Random(9).randbytes(2 * MiB + 17)

    def chunked() -> object:
        for i in range(0, len(data), 300_000):
            yield data[i:i + 300_000]
    r = dav.put("/dav/Photo.jpg", content=chunked(),
                headers={"X-Expected-Entity-Length": str(len(data))})
    assert r.status_code == 201
    assert hashlib.sha256(dav.get("/dav/Photo.jpg").content).digest() == \
        hashlib.sha256(data).digest()
    for name in ("._Photo.jpg", ".DS_Store"):
        assert dav.put(f"/dav/{name}", content=b"\x00\x05\x16\x07").status_code == 201
    lock = dav.request("LOCK", "/dav/Photo.jpg", headers={"Timeout": "Second-600"}, content=(
        b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
        b"</D:lockscope><D:locktype><D:write/></D:locktype>"
        b"<D:owner><D:href>finder</D:href></D:owner></D:lockinfo>"))
    assert lock.status_code == 200
    token = lock.headers["lock-token"]
    assert dav.put("/dav/Photo.jpg", content=b"no token").status_code == 423
    assert dav.put("/dav/Photo.jpg", content=b"with token",
                   headers={"If": f"({token})"}).status_code == 204
    assert dav.request("UNLOCK", "/dav/Photo.jpg",
                       headers={"Lock-Token": token}).status_code == 204


def test_a_plain_get_answers_like_the_protocol_does(dav: httpx.Client) -> None:
    """A whole-file GET is served without wsgidav (dav/plain_get.py): same headers as the
    library's HEAD; a folder, a missing file and conditional GETs still get its answers."""
    data = random.Random(12).randbytes(3 * MiB + 5)
    assert dav.request("MKCOL", "/dav/plain").status_code == 201
    assert dav.put("/dav/plain/whole.txt", content=data).status_code == 201
    head = dav.head("/dav/plain/whole.txt")
    r = dav.get("/dav/plain/whole.txt")
    assert r.status_code == 200 and r.content == data
    for name in ("content-length", "content-type", "etag", "last-modified", "accept-ranges"):
        assert r.headers[name] == head.headers[name], name
    assert r.headers["content-type"] == "text/plain"
    dav.put("/dav/plain/empty.bin", content=b"")
    r = dav.get("/dav/plain/empty.bin")
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "0"
    assert dav.get("/dav/plain/missing.bin").status_code == 404
    assert dav.get("/dav/plain").status_code == 403  # a folder: no directory browser
    assert dav.get("/dav/plain/whole.txt", headers={"If-None-Match": r.headers["etag"]}
                   ).status_code == 200  # another file's tag: the whole body
    assert dav.get("/dav/plain/whole.txt", headers={"If-None-Match": head.headers["etag"]}
                   ).status_code == 304


def test_ranges_and_conditional_gets(dav: httpx.Client) -> None:
    data = random.Random(11).randbytes(5 * MiB)
    dav.put("/dav/range.bin", content=data)
    r = dav.get("/dav/range.bin", headers={"Range": "bytes=4194300-4194399"})
    assert r.status_code == 206 and r.content == data[4194300:4194400]
    r = dav.get("/dav/range.bin", headers={"Range": "bytes=-10"})
    assert r.status_code == 206 and r.content == data[-10:]
    etag = dav.head("/dav/range.bin").headers["etag"]
    assert dav.get("/dav/range.bin", headers={"If-None-Match": etag}).status_code == 304
    assert dav.put("/dav/range.bin", content=b"x", headers={"If-Match": '"nope"'}
                   ).status_code == 412
