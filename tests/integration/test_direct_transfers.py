"""Direct transfers against real processes: bytes go between the client and the storage nodes
with grants the API signs; the API records what the nodes' receipts prove."""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path

import httpx
import pytest
import sqlalchemy

from minidropbox.client.api import ApiClient
from minidropbox.client.batch import TransferStats, UploadItem
from minidropbox.client.download import download_file
from minidropbox.client.fetch import fetch_range
from minidropbox.client.remote import Remote
from minidropbox.client.upload import upload_file
from minidropbox.client.upload_many import upload_many
from minidropbox.core import errors
from minidropbox.metadata import fence
from minidropbox.metadata.tables import server_info
from tests.conftest import PASSWORD, bearer, signup_and_login
from tests.harness import TestCluster
from tests.integration.direct_protocol import (
    DIRECT,
    commit,
    present,
    put_at,
    send_direct,
    upload_grants,
    wait_for_grants,
)

MiB = 1024 * 1024


@pytest.fixture
def cluster(module_cluster: TestCluster) -> TestCluster:
    """One cluster for the module (3 nodes, R=2): every test has its own account."""
    return module_cluster


def remote_for(url: str, name: str, direct: bool = True, chain: bool = False) -> Remote:
    api = ApiClient(url, persist=False)
    api.request("POST", "/api/v1/auth/signup", auth=False,
                json={"username": name, "password": PASSWORD})
    api.login(name, PASSWORD)
    return Remote(api, direct=direct, chain=chain)


def test_a_chunk_sent_to_the_nodes_is_committed_and_read_back(
        cluster: TestCluster, cluster_http: httpx.Client) -> None:
    c = cluster_http
    auth = bearer(signup_and_login(c, "alice"))
    wait_for_grants(c, auth)
    data = random.Random(1).randbytes(MiB + 5)
    h = hashlib.sha256(data).hexdigest()
    # Not owned yet: a commit naming it is refused until the receipts are presented.
    assert commit(c, auth, "/early.bin", [data]).status_code == 400
    receipts = send_direct(c, auth, data)
    assert len(receipts) == 2
    r = present(c, auth, receipts)
    assert r.status_code == 200 and r.json() == {"recorded": [h], "refused": []}, r.text
    assert c.post("/api/v1/chunks/missing", headers=auth,
                  json={"hashes": [h]}).json()["missing"] == []
    r = commit(c, auth, "/direct.bin", [data])
    assert r.status_code == 201, r.text
    # The read plan names the holders and a grant to read from them.
    plan = c.get("/api/v1/files/chunks", headers=auth, params={"path": "/direct.bin"}).json()
    assert plan["entry"]["size"] == len(data) and plan["next_offset"] is None
    [chunk] = plan["chunks"]
    assert (chunk["hash"], chunk["offset"], len(chunk["nodes"])) == (h, 0, 2)
    got = httpx.get(f"{chunk['nodes'][0]}/chunks/{h}",
                    headers={"Authorization": f"Grant {chunk['grant']}"})
    assert got.status_code == 200 and got.content == data
    # The same bytes through the API's proxy route.
    assert c.get("/api/v1/files/content", headers=auth,
                 params={"path": "/direct.bin"}).content == data


def test_one_receipt_is_not_enough_for_r_copies(cluster: TestCluster,
                                                cluster_http: httpx.Client) -> None:
    c = cluster_http
    auth = bearer(signup_and_login(c, "bob"))
    wait_for_grants(c, auth)
    data = b"one copy only " * 5000
    receipts = send_direct(c, auth, data, copies=1)
    r = present(c, auth, receipts)
    assert r.status_code == 200, r.text
    assert r.json()["recorded"] == []
    assert r.json()["refused"][0]["error"]["code"] == "invalid_receipt"
    assert commit(c, auth, "/one.bin", [data]).status_code == 400


def test_read_plan_pages_and_ranges(cluster: TestCluster, cluster_http: httpx.Client) -> None:
    c = cluster_http
    auth = bearer(signup_and_login(c, "carol"))
    wait_for_grants(c, auth)
    blobs = [random.Random(i).randbytes(300 * 1024) for i in range(3)]
    receipts = [r for b in blobs for r in send_direct(c, auth, b)]
    assert len(present(c, auth, receipts).json()["recorded"]) == 3
    assert commit(c, auth, "/three.bin", blobs).status_code == 201
    first = c.get("/api/v1/files/chunks", headers=auth,
                  params={"path": "/three.bin", "limit": 2}).json()
    assert [x["offset"] for x in first["chunks"]] == [0, 300 * 1024]
    assert first["next_offset"] == 600 * 1024
    rest = c.get("/api/v1/files/chunks", headers=auth,
                 params={"path": "/three.bin", "offset": 300 * 1024 + 7}).json()
    assert [x["offset"] for x in rest["chunks"]] == [300 * 1024, 600 * 1024]
    r = c.get("/api/v1/files/chunks", headers=auth,
              params={"path": "/three.bin", "offset": 900 * 1024})
    assert r.status_code == 400
    assert c.get("/api/v1/files/chunks", headers=auth,
                 params={"path": "/three.bin", "limit": 1001}).status_code == 422


def test_uploads_need_sizes_that_fit(cluster: TestCluster, cluster_http: httpx.Client) -> None:
    c = cluster_http
    auth = bearer(signup_and_login(c, "dave"))
    wait_for_grants(c, auth)
    data = b"x" * DIRECT
    h = hashlib.sha256(data).hexdigest()
    r = c.post("/api/v1/chunks/missing", headers=auth, json={"hashes": [h], "sizes": [1, 2]})
    assert r.status_code == 400
    r = c.post("/api/v1/chunks/missing", headers=auth,
               json={"hashes": [h], "sizes": [64 * MiB]})
    assert r.status_code == 400
    # The grant's size is a ceiling the node enforces.
    upload = upload_grants(c, auth, [data])[h]
    r = put_at(upload["nodes"][0], h, data + b"x", upload["grant"])
    assert r.status_code in (403, 413), r.text
    # Chunks under DIRECT_MIN_BYTES travel through the API (in batches): no grant.
    assert upload_grants(c, auth, [b"tiny"]) == {}


@pytest.mark.parametrize("chain", [False, True], ids=["fanout", "chain"])
def test_the_client_sends_and_fetches_at_the_nodes(cluster: TestCluster,
                                                   cluster_http: httpx.Client,
                                                   tmp_path: Path, chain: bool) -> None:
    wait_for_grants(cluster_http, bearer(signup_and_login(cluster_http, f"probe1{chain}")))
    # Each copy sent by the client (fan-out), or once to the first node, which passes it on.
    copies_sent = 1 if chain else 2
    big = tmp_path / "big.bin"
    big.write_bytes(random.Random(5).randbytes(9 * MiB + 3))
    with remote_for(cluster.url, f"erin{chain}", chain=chain) as remote:
        stats = TransferStats()
        entry = upload_file(remote, big, "/big.bin", stats=stats)
        assert entry.size == 9 * MiB + 3
        # missing (one window) + commit carrying the receipts; the bytes went to the nodes.
        assert stats.requests == 2, stats
        assert stats.node_requests == copies_sent * stats.chunks_sent > 0
        got = tmp_path / "got.bin"
        fetched = TransferStats()
        download_file(remote, "/big.bin", got, stats=fetched)
        assert got.read_bytes() == big.read_bytes()
        assert fetched.node_requests >= fetched.files and fetched.requests <= 2, fetched
        # Small files: one missing, the node PUTs, one commit_batch with every receipt.
        small = []
        for i in range(20):
            p = tmp_path / f"s{i}.txt"
            p.write_bytes(random.Random(100 + i).randbytes(300 * 1024))
            small.append(UploadItem(p, f"/small/s{i}.txt", None))
        result = upload_many(remote, small)
        assert not result.failures and len(result.entries) == 20
        assert result.stats.requests == 2, result.stats
        assert result.stats.node_requests == 20 * copies_sent


def test_the_client_falls_back_when_nodes_are_unreachable(tmp_path: Path) -> None:
    # The nodes advertise an address this client cannot reach: everything goes through the
    # API, on its own, and still works.
    with TestCluster(tmp_path, node_env={"public_url": "http://127.0.0.1:9"}) as c, \
            httpx.Client(base_url=c.url, timeout=60) as http:
        wait_for_grants(http, bearer(signup_and_login(http, "probe2")))
        data = random.Random(7).randbytes(3 * MiB)
        src = tmp_path / "f.bin"
        src.write_bytes(data)
        with remote_for(c.url, "frank") as remote:
            stats = TransferStats()
            upload_file(remote, src, "/f.bin", stats=stats)
            assert stats.chunks_sent > 0
            got = tmp_path / "got.bin"
            download_file(remote, "/f.bin", got)
            assert got.read_bytes() == data


def test_receipts_from_before_a_deletion_are_refused(cluster: TestCluster,
                                                     cluster_http: httpx.Client) -> None:
    # A deletion (GC, a dropped copy) between the grant and the receipts may have removed a
    # copy a node kept on PUT: the receipts are refused and the chunk stays missing.
    c = cluster_http
    auth = bearer(signup_and_login(c, "gina"))
    wait_for_grants(c, auth)
    data = random.Random(9).randbytes(DIRECT * 2)
    receipts = send_direct(c, auth, data)
    engine = sqlalchemy.create_engine(cluster.database_url)
    try:
        with engine.begin() as conn:  # what open_fence + close_fence leave behind
            epoch = fence.epoch(conn)
            conn.execute(sqlalchemy.update(server_info)
                         .where(server_info.c.key == fence.EPOCH).values(value=str(epoch + 2)))
            if conn.execute(sqlalchemy.select(server_info.c.key)
                            .where(server_info.c.key == fence.EPOCH)).first() is None:
                conn.execute(sqlalchemy.insert(server_info).values(key=fence.EPOCH,
                                                                   value=str(epoch + 2)))
    finally:
        engine.dispose()
    r = present(c, auth, receipts)
    assert r.status_code == 200 and r.json()["recorded"] == [], r.text
    assert "deleted" in r.json()["refused"][0]["error"]["message"]
    h = hashlib.sha256(data).hexdigest()
    assert c.post("/api/v1/chunks/missing", headers=auth,
                  json={"hashes": [h]}).json()["missing"] == [h]
    # New grants carry the new epoch: sent again, the chunk is recorded.
    assert present(c, auth, send_direct(c, auth, data)).json()["recorded"] == [h]


def test_range_reads_fetch_only_the_chunks_they_need(cluster: TestCluster,
                                                     cluster_http: httpx.Client,
                                                     tmp_path: Path) -> None:
    wait_for_grants(cluster_http, bearer(signup_and_login(cluster_http, "probe3")))
    data = random.Random(11).randbytes(6 * MiB + 17)
    src = tmp_path / "r.bin"
    src.write_bytes(data)
    with remote_for(cluster.url, "rita") as remote:
        upload_file(remote, src, "/r.bin")
        _, chunks, _ = remote.read_plan("/r.bin")
        assert len(chunks) >= 3
        middle = chunks[1]
        for start, end in ((0, 0), (5, 99), (middle.offset + 3, middle.offset + 10),
                           (middle.offset - 1, middle.offset + 1), (len(data) - 10, None),
                           (4 * MiB, len(data) + 100)):
            out = io.BytesIO()
            stats = TransferStats()
            written = fetch_range(remote, "/r.bin", None, start, end, out, stats=stats)
            want = data[start:None if end is None else end + 1]
            assert out.getvalue() == want and written == len(want), (start, end)
            touched = [c for c in chunks if c.offset <= (len(data) - 1 if end is None else end)
                       and c.offset + c.size > start]
            # Only those chunks (a hedge may ask a second holder under load).
            assert len(touched) <= stats.node_requests <= 2 * len(touched), (start, end, stats)
        with pytest.raises(errors.InvalidInput):
            fetch_range(remote, "/r.bin", None, len(data), None, io.BytesIO(),
                        stats=TransferStats())
