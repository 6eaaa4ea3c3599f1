"""No request may cost the server far more than it costs the sender: a download of a file that
lists one chunk thousands of times, folders nested thousands deep, moves and restores of huge
trees, uploads far over quota. Each is bounded by a documented limit, and what it did cost
is measured from outside (node reads, rows created)."""

from __future__ import annotations

import hashlib
import os
import select
import socket
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy

from tests.harness import ServerProcess, TestCluster, start_api
from tests.security.conftest import QUOTA, User, database, new_user

MAX_DEPTH = 64  # the default of max_path_depth
CHUNK = 64 * 1024  # the default of min_average_chunk


def _node_reads(cluster: TestCluster) -> float:
    """Chunk GETs the cluster's nodes have served so far (their Prometheus counters)."""
    total = 0.0
    for node in cluster.nodes:
        text = httpx.get(node.url + "/metrics", timeout=30,
                         headers={"Authorization": f"Bearer {cluster.secret}"}).text
        total += sum(float(line.split()[-1]) for line in text.splitlines()
                     if line.startswith("minidropbox_node_chunk_reads_total"))
    return total


def _put_chunk(client: httpx.Client, user: User, data: bytes) -> str:
    h = hashlib.sha256(data).hexdigest()
    r = client.put(f"/api/v1/chunks/{h}", headers=user.auth, content=data)
    assert r.status_code == 201, r.text
    return h


def test_a_chunk_listed_thousands_of_times_is_fetched_once(sec_cluster: TestCluster,
                                                          client: httpx.Client) -> None:
    user = new_user(client, "amp")
    # One 1-byte chunk listed 10,000 times: refused at commit (bytes per reference).
    tiny = _put_chunk(client, user, b"x")
    r = client.post("/api/v1/files/commit", headers=user.auth, json={
        "path": "/tiny.bin", "size": 10_000, "chunks": [tiny] * 10_000})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input", r.text[:300]
    # Chunks of the smallest average allowed, repeated: fetched once each per download.
    blocks = [os.urandom(CHUNK) for _ in range(12)]
    hashes = [_put_chunk(client, user, b) for b in blocks]
    files = {"/one.bin": ([hashes[0]] * 200, blocks[0] * 200),
             "/mixed.bin": (hashes * 16, b"".join(blocks) * 16)}
    for path, (chunks, content) in files.items():
        r = client.post("/api/v1/files/commit", headers=user.auth, json={
            "path": path, "size": len(content), "chunks": chunks, "parent_version": None})
        assert r.status_code == 201, r.text[:300]
    for path, (chunks, content) in files.items():
        before = _node_reads(sec_cluster)
        r = client.get("/api/v1/files/content", headers=user.auth, params={"path": path})
        assert r.status_code == 200 and r.content == content
        reads = _node_reads(sec_cluster) - before
        distinct = len(set(chunks))
        # Each distinct chunk once (a retry on another replica at most), not once per place.
        assert reads <= 2 * distinct, f"{path}: {reads:.0f} node reads for {len(chunks)} places"
        # Ranges are served from the same bounded read-ahead.
        span = f"bytes=5-{5 + 3 * CHUNK}"
        r = client.get("/api/v1/files/content", headers={**user.auth, "Range": span},
                       params={"path": path})
        assert r.status_code == 206 and r.content == content[5:6 + 3 * CHUNK]
    assert client.get("/healthz").status_code == 200


def _chunked_upload(url: str, user: User, path: str, total: int, piece: int,
                    pause_at: int) -> tuple[bytes, int]:
    """PUT ``total`` bytes with chunked encoding on a raw socket, stopping as soon as the server
    answers or ``pause_at`` bytes are sent; then wait up to a minute for the answer (without
    ending the body unless all of it was sent). Returns (the answer, bytes sent by then)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sent = 0
    answer = b""
    try:
        sock.sendall(f"PUT /api/v1/files/content?path={path} HTTP/1.1\r\nHost: x\r\n"
                     f"Authorization: {user.auth['Authorization']}\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n".encode())
        block = os.urandom(piece)
        while sent < min(total, pause_at) and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(b"%x\r\n" % piece + block + b"\r\n")
            except OSError:
                break
            sent += piece
        if sent >= total:
            sock.sendall(b"0\r\n\r\n")
        sock.settimeout(60)
        while b"\r\n\r\n" not in answer:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break  # no answer: the caller's check says so
            if not data:
                break
            answer += data
    finally:
        sock.close()
    return answer, sent


def test_a_chunked_upload_over_quota_is_refused_before_it_is_spooled(
        sec_cluster: TestCluster, client: httpx.Client) -> None:
    user = new_user(client, "spool")
    # The sender stops at twice the quota and waits for the answer without ending the body:
    # a server that spooled the whole body before checking would never answer. (Bytes sent
    # before the answer depend on how fast the server reads, which depends on the machine's
    # load; whether it answers at all does not.)
    answer, sent = _chunked_upload(sec_cluster.url, user, "/big.bin", 5 * QUOTA, 256 * 1024,
                                   pause_at=2 * QUOTA)
    assert answer.startswith((b"HTTP/1.1 507", b"HTTP/1.1 413")), (sent, answer[:200])
    assert sent <= 2 * QUOTA, f"{sent} bytes sent before the answer (quota {QUOTA})"
    engine = database(sec_cluster)
    try:
        with engine.connect() as conn:
            owned = conn.execute(sqlalchemy.text(
                "SELECT count(*) FROM user_chunks JOIN users ON users.id = user_chunks.user_id "
                "WHERE users.username = :u"), {"u": user.name}).scalar()
    finally:
        engine.dispose()
    assert owned == 0, f"{owned} chunks stored for a refused upload"
    assert not list((sec_cluster.tmp / "api-data" / "spool").glob("upload-*"))
    # What fits still goes through.
    r = client.put("/api/v1/files/content", headers=user.auth, params={"path": "/ok.bin"},
                   content=iter([os.urandom(100_000)] * 3))
    assert r.status_code == 201, r.text


def _entries(cluster: TestCluster, user: User) -> int:
    engine = database(cluster)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sqlalchemy.text(
                "SELECT count(*) FROM entries JOIN namespaces ON namespaces.id = "
                "entries.namespace_id JOIN users ON users.id = namespaces.owner_id "
                "WHERE users.username = :u"), {"u": user.name}).scalar_one())
    finally:
        engine.dispose()


def test_paths_nest_at_most_max_depth(sec_cluster: TestCluster, client: httpx.Client) -> None:
    user = new_user(client, "deep")
    deep = "/d" * 300  # 600 bytes: the path rules alone allow this
    r = client.post("/api/v1/files/commit_batch", headers=user.auth, json={"commits": [
        {"path": f"{deep}/f{i}", "size": 0, "chunks": []} for i in range(5)]})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["ok"] for x in results] == [False] * 5, results[:1]
    assert {x["error"]["code"] for x in results} == {"invalid_path"}
    assert _entries(sec_cluster, user) == 0  # not one folder made on the way
    at_limit = "/d" * MAX_DEPTH
    assert client.post("/api/v1/files/folder", headers=user.auth,
                       json={"path": at_limit}).status_code == 201
    r = client.post("/api/v1/files/folder", headers=user.auth, json={"path": at_limit + "/x"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_path"
    # A move may not push what is inside a folder past the limit either.
    assert client.post("/api/v1/files/folder", headers=user.auth,
                       json={"path": "/m/a/b/c"}).status_code == 201
    r = client.post("/api/v1/files/move", headers=user.auth,
                    json={"from": "/m", "to": "/d" * (MAX_DEPTH - 2) + "/m"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_path", r.text
    r = client.post("/api/v1/files/move", headers=user.auth,
                    json={"from": "/m", "to": "/d" * (MAX_DEPTH - 4) + "/m"})
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def tree_api(sec_cluster: TestCluster,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """An API with small tree limits, on the security cluster's storage nodes."""
    server = start_api(tmp_path_factory.mktemp("trees"), nodes=[
        f"{n.name}={n.url}" for n in sec_cluster.nodes], env={
        "cluster_secret": sec_cluster.secret, "replicas": 2,
        "max_entries_per_change": PER_CHANGE, "max_entries_per_account": PER_ACCOUNT,
        "max_chunks_per_file": PER_FILE, "max_chunk_refs_per_account": REFS_PER_ACCOUNT})
    try:
        yield server
    finally:
        server.stop()


PER_CHANGE, PER_ACCOUNT, PER_FILE, REFS_PER_ACCOUNT = 40, 120, 3000, 5000


def test_one_change_touches_a_bounded_number_of_entries(tree_api: ServerProcess) -> None:
    with httpx.Client(base_url=tree_api.url, timeout=60) as c:
        user = new_user(c, "tree")
        batch = [{"path": f"/Big/f{i:02}", "size": 0, "chunks": []} for i in range(45)]
        results = c.post("/api/v1/files/commit_batch", headers=user.auth,
                         json={"commits": batch}).json()["results"]
        # /Big and 39 files fit in one request's budget; the rest are refused, each alone.
        assert [x["ok"] for x in results] == [True] * 39 + [False] * 6
        assert results[-1]["error"]["code"] == "too_many_entries"
        for start in (39, 41):
            r = c.post("/api/v1/files/commit_batch", headers=user.auth,
                       json={"commits": batch[start:start + 2]})
            assert all(x["ok"] for x in r.json()["results"]), r.text
        for method, url, kwargs in (
                ("POST", "/api/v1/files/move", {"json": {"from": "/Big", "to": "/Moved"}}),
                ("DELETE", "/api/v1/files", {"params": {"path": "/Big"}})):
            r = c.request(method, url, headers=user.auth, **kwargs)  # type: ignore[arg-type]
            assert r.status_code == 400, r.text
            assert r.json()["error"]["code"] == "too_many_entries"
        # Within the limit a folder moves whole, in one statement, names and case kept.
        for path in ("/Small/A/x", "/small/a/Y", "/Small/b"):
            assert c.post("/api/v1/files/folder", headers=user.auth,
                          json={"path": path}).status_code == 201
        r = c.post("/api/v1/files/move", headers=user.auth,
                   json={"from": "/Small", "to": "/Other/Renamed"})
        assert r.status_code == 200, r.text
        listing = c.get("/api/v1/files/list", headers=user.auth,
                        params={"path": "/Other", "recursive": "true"}).json()["entries"]
        # (Each name keeps the case it was given: Y was made as /small/a/Y.)
        assert {e["path"] for e in listing} == {
            "/Other/Renamed", "/Other/Renamed/A", "/Other/Renamed/a/Y", "/Other/Renamed/A/x",
            "/Other/Renamed/b"}
        assert c.get("/api/v1/files/list", headers=user.auth, params={
            "path": "/Other/renamed/a"}).json()["entries"] != []


def test_the_metadata_quota_counts_entries_and_chunk_references(
        tree_api: ServerProcess) -> None:
    with httpx.Client(base_url=tree_api.url, timeout=60) as c:
        user = new_user(c, "mq")
        codes = []
        for i in range(4):
            r = c.post("/api/v1/files/commit_batch", headers=user.auth, json={"commits": [
                {"path": f"/q{i}/f{j:02}", "size": 0, "chunks": []} for j in range(35)]})
            codes += [x["ok"] or x["error"]["code"] for x in r.json()["results"]]
        assert codes.count(True) == PER_ACCOUNT - 4  # four folders, the rest files
        assert set(codes) == {True, "quota_exceeded"}
        r = c.post("/api/v1/files/folder", headers=user.auth, json={"path": "/more"})
        assert r.status_code == 507 and r.json()["error"]["code"] == "quota_exceeded"
        # The trash counts too; emptying it makes room.
        assert c.delete("/api/v1/files", headers=user.auth,
                        params={"path": "/q0"}).status_code == 200
        assert c.post("/api/v1/files/folder", headers=user.auth,
                      json={"path": "/more"}).status_code == 507
        assert c.delete("/api/v1/trash", headers=user.auth).status_code == 200
        assert c.post("/api/v1/files/folder", headers=user.auth,
                      json={"path": "/more"}).status_code == 201

        other = new_user(c, "refs")
        block = _put_chunk(c, other, os.urandom(CHUNK))
        for count, code in ((PER_FILE + 1, 400), (PER_FILE, 201)):
            r = c.post("/api/v1/files/commit", headers=other.auth, json={
                "path": "/r.bin", "size": count * CHUNK, "chunks": [block] * count})
            assert r.status_code == code, r.text
        r = c.post("/api/v1/files/commit", headers=other.auth, json={
            "path": "/r.bin", "size": CHUNK, "chunks": [block], "parent_version": 1})
        assert r.status_code == 201, r.text
        # Restoring version 1 would copy its 3000 references: past the account's 5000.
        r = c.post("/api/v1/files/restore", headers=other.auth,
                   json={"path": "/r.bin", "version": 1})
        assert r.status_code == 507 and r.json()["error"]["code"] == "quota_exceeded", r.text
