"""A plain PUT is taken on the event loop (dav/plain_put.py), beside wsgidav: it must behave
exactly as the protocol's PUT — versions, the quota (507, nothing kept), locks (423 from
the library), X-OC-Mtime, OC-Checksum, chunked bodies without a length cut into the same
chunks as the API's upload, a shared folder's viewer refused."""

from __future__ import annotations

import hashlib
import random

import httpx
import pytest
import sqlalchemy

from minidropbox.dav.plain_put import plain_put_path
from tests.dav.conftest import DavUser, new_dav_user
from tests.dav.test_shared_folders import LOCKINFO, _share
from tests.harness import TestCluster

MiB = 1024 * 1024


def _api(user: DavUser) -> httpx.Client:
    return httpx.Client(base_url=user.base, headers=user.api, timeout=60)


def _pieces(data: bytes, size: int = 100_000) -> object:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def _engine(cluster: TestCluster) -> sqlalchemy.Engine:
    url = cluster.api.env.get("MINIDROPBOX_DATABASE_URL") or \
        f"sqlite:///{cluster.tmp / 'api-data' / 'metadata.db'}"
    return sqlalchemy.create_engine(url)


def _set_quota(engine: sqlalchemy.Engine, username: str, quota: int) -> None:
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE users SET quota_bytes = :q WHERE username = :u"),
                     {"q": quota, "u": username})


@pytest.mark.parametrize(("method", "headers", "taken"), [
    ("PUT", {}, True),
    ("PUT", {"transfer-encoding": "chunked"}, True),
    ("PUT", {"x-oc-mtime": "1", "oc-checksum": "SHA1:ab"}, True),
    ("PUT", {"if": "(<opaquelocktoken:x>)"}, False),
    ("PUT", {"if-match": '"abc"'}, False),
    ("PUT", {"if-none-match": "*"}, False),
    ("PUT", {"content-range": "bytes 0-1/2"}, False),
    ("PUT", {"content-encoding": "gzip"}, False),
    ("GET", {}, False),
])
def test_only_unconditional_puts_are_taken_off_the_protocol(
        method: str, headers: dict[str, str], taken: bool) -> None:
    scope = {"method": method, "path": "/dav/a/b.txt"}
    assert (plain_put_path(scope, headers, "/dav") == "/a/b.txt") is taken
    assert plain_put_path({"method": "PUT", "path": "/dav/"}, {}, "/dav") is None


def test_a_chunked_body_is_cut_like_the_api_upload_and_overwrites_are_versions(
        dav_user: DavUser, dav: httpx.Client) -> None:
    data = random.Random(11).randbytes(9 * MiB + 123)  # several chunks, a short tail
    with _api(dav_user) as api:
        cursor = api.get("/api/v1/changes").json()["cursor"]
    r = dav.put("/dav/big.bin", content=_pieces(data))  # chunked: no Content-Length
    assert r.status_code == 201, r.text
    etag = r.headers["etag"].strip('"')
    with _api(dav_user) as api:
        r = api.put("/api/v1/files/content", params={"path": "/same.bin"}, content=data)
        assert r.status_code == 201, r.text
        assert r.json()["content_hash"] == etag  # the same chunks, so the same content hash
        assert dav.put("/dav/big.bin", content=data[:1000]).status_code == 204
        assert dav.put("/dav/big.bin", content=b"").status_code == 204
        versions = api.get("/api/v1/files/versions", params={"path": "/big.bin"}).json()
        assert [v["version"] for v in versions["versions"]] == [3, 2, 1]
        assert {v["device"] for v in versions["versions"]} == {"webdav"}
        journal = api.get("/api/v1/changes", params={"cursor": cursor}).json()["entries"]
        assert [c["version"] for c in journal if c["path"] == "/big.bin"] == [1, 2, 3]
    assert dav.get("/dav/big.bin").content == b""
    assert hashlib.sha256(dav.get("/dav/same.bin").content).digest() == \
        hashlib.sha256(data).digest()
    assert dav.put("/dav/no-parent/x.txt", content=b"x").status_code == 409
    assert dav.request("MKCOL", "/dav/folder").status_code == 201
    assert dav.put("/dav/folder", content=b"x").status_code == 405


def test_checksums_and_mtime_headers(dav: httpx.Client) -> None:
    data = random.Random(12).randbytes(300_000)
    sha1, md5 = hashlib.sha1(data).hexdigest(), hashlib.md5(data).hexdigest()
    r = dav.put("/dav/sum.bin", content=data,
                headers={"OC-Checksum": f"SHA1:{sha1}", "X-OC-Mtime": "1000000000"})
    assert r.status_code == 201 and r.headers["x-oc-mtime"] == "accepted", r.text
    assert dav.get("/dav/sum.bin").headers["last-modified"] == "Sun, 09 Sep 2001 01:46:40 GMT"
    found = dav.request("PROPFIND", "/dav/sum.bin", headers={"Depth": "0"}, content=(
        b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
        b"<d:prop><oc:checksums/></d:prop></d:propfind>"))
    assert f"SHA1:{sha1} MD5:{md5}".encode() in found.content, found.text
    r = dav.put("/dav/sum.bin", content=b"other bytes", headers={"OC-Checksum": f"MD5:{md5}"})
    assert r.status_code == 400 and "OC-Checksum" in r.text
    assert dav.get("/dav/sum.bin").content == data  # nothing committed
    assert dav.put("/dav/t.txt", content=b"x", headers={"X-OC-Mtime": "soon"}).status_code \
        == 400
    assert dav.get("/dav/t.txt").status_code == 404


def test_locked_resources_are_refused_with_423(dav: httpx.Client) -> None:
    assert dav.put("/dav/held.txt", content=b"one").status_code == 201
    lock = dav.request("LOCK", "/dav/held.txt", content=LOCKINFO)
    assert lock.status_code == 200
    r = dav.put("/dav/held.txt", content=b"two")
    assert r.status_code == 423 and b"/held.txt</" in r.content, r.text  # wsgidav's answer
    assert dav.put("/dav/held.txt", content=b"two",
                   headers={"If": f"({lock.headers['lock-token']})"}).status_code == 204
    # A folder locked at depth infinity: no new file in it without the token.
    assert dav.request("MKCOL", "/dav/locked").status_code == 201
    lock = dav.request("LOCK", "/dav/locked", headers={"Depth": "infinity"}, content=LOCKINFO)
    assert lock.status_code == 200
    assert dav.put("/dav/locked/new.txt", content=b"x").status_code == 423
    assert dav.get("/dav/locked/new.txt").status_code == 404
    assert dav.get("/dav/held.txt").content == b"two"


def test_a_body_over_quota_is_refused_and_kept_by_nobody(dav_cluster: TestCluster) -> None:
    user = new_dav_user(dav_cluster.url, "quota")
    engine = _engine(dav_cluster)
    try:
        _set_quota(engine, user.username, 6 * MiB)
        with user.client() as dav:
            data = random.Random(13).randbytes(5 * MiB)
            assert dav.put("/dav/first.bin", content=data[:3 * MiB]).status_code == 201
            # Chunked, no length declared: refused once the body passes the room left.
            r = dav.put("/dav/second.bin", content=_pieces(data, 256 * 1024))
            assert r.status_code == 507, r.text
            assert dav.get("/dav/second.bin").status_code == 404
            assert dav.put("/dav/fits.bin", content=data[-MiB:]).status_code == 201
        with engine.connect() as conn:
            owned = conn.execute(sqlalchemy.text(
                "SELECT coalesce(sum(chunks.size), 0) FROM user_chunks "
                "JOIN chunks ON chunks.hash = user_chunks.chunk_hash "
                "JOIN users ON users.id = user_chunks.user_id WHERE users.username = :u"),
                {"u": user.username}).scalar_one()
        assert owned <= 4 * MiB + 1, owned  # the refused body's chunks count for nobody
    finally:
        engine.dispose()


def test_a_viewer_of_a_shared_folder_is_refused(dav_cluster: TestCluster) -> None:
    owner, viewer = (new_dav_user(dav_cluster.url, n) for n in ("own", "view"))
    with owner.client() as o, viewer.client() as v:
        assert o.request("MKCOL", "/dav/Shared").status_code == 201
        assert o.put("/dav/Shared/a.txt", content=b"owner's").status_code == 201
        _share(owner, "/Shared", viewer, "viewer", "/Theirs")
        for path in ("/dav/Theirs/a.txt", "/dav/Theirs/new.txt"):
            r = v.put(path, content=_pieces(b"v" * 500_000))
            assert r.status_code == 403, (path, r.text)
        assert o.get("/dav/Shared/a.txt").content == b"owner's"
        assert o.get("/dav/Shared/new.txt").status_code == 404


def _put_all(user: DavUser, files: dict[str, bytes]) -> dict[str, int]:
    """PUT every file at once (one connection each), as a client with many transfers."""
    from concurrent.futures import ThreadPoolExecutor

    def put(name: str) -> int:
        with user.client() as dav:
            return dav.put(f"/dav/many/{name}", content=files[name]).status_code

    with user.client() as dav:
        assert dav.request("MKCOL", "/dav/many").status_code == 201
    with ThreadPoolExecutor(len(files)) as pool:
        return dict(zip(files, pool.map(put, files), strict=True))


def test_small_puts_in_flight_together_are_each_their_own_version(
        dav_cluster: TestCluster) -> None:
    """Concurrent small PUTs of one account are stored in batches (dav/small_puts.py); each
    is still its own commit: its own version, journal entry and checksums."""
    user = new_dav_user(dav_cluster.url, "many")
    rng = random.Random(5)
    files = {f"f{i:02}.txt": rng.randbytes(4096) for i in range(16)}
    files["same.txt"] = files["f00.txt"]  # the same content twice in one batch
    with _api(user) as api:
        cursor = api.get("/api/v1/changes").json()["cursor"]
    assert set(_put_all(user, files).values()) == {201}
    with user.client() as dav, _api(user) as api:
        for name, data in files.items():
            assert dav.get(f"/dav/many/{name}").content == data
            meta = api.get("/api/v1/files/metadata", params={"path": f"/many/{name}"}).json()
            assert meta["version"] == 1
        seen: list[dict[str, object]] = []
        while True:
            page = api.get("/api/v1/changes", params={"cursor": cursor}).json()
            seen += page["entries"]
            cursor = page["cursor"]
            if not page["has_more"]:
                break
    committed = sorted(str(e["path"]) for e in seen if e["op"] == "commit")
    assert committed == sorted(f"/many/{n}" for n in files)


def test_small_puts_in_flight_together_are_judged_alone_against_the_quota(
        dav_cluster: TestCluster) -> None:
    """A batch that does not fit the quota is stored again file by file: every file that
    fits is kept, each refused one answers 507 and is nowhere."""
    user = new_dav_user(dav_cluster.url, "manyq")
    engine = _engine(dav_cluster)
    try:
        _set_quota(engine, user.username, 1_000_000)
        rng = random.Random(6)
        files = {f"f{i:02}.bin": rng.randbytes(100_000) for i in range(16)}
        answers = _put_all(user, files)
        assert set(answers.values()) <= {201, 507}, answers
        kept = [n for n, status in answers.items() if status == 201]
        assert 1 <= len(kept) <= 10, answers
        with user.client() as dav:
            for name, status in answers.items():
                r = dav.get(f"/dav/many/{name}")
                if status == 201:
                    assert r.content == files[name]
                else:
                    assert r.status_code == 404
    finally:
        engine.dispose()
