"""The quota counts committed versions only: an upload that fails or is abandoned costs
nothing, what it sent is free to send again, and ``GET /usage`` / ``minidropbox du`` say
where the bytes are. Real API, real storage nodes."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from minidropbox.core.chunking import chunk_bytes
from tests.conftest import PASSWORD, bearer, signup_and_login
from tests.harness import BIN, TestCluster
from tests.integration.direct_protocol import present, send_direct, wait_for_grants
from tests.integration.test_files import upload

MiB = 1024 * 1024
QUOTA = 4 * MiB


@pytest.fixture(scope="module")
def quota_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    with TestCluster(tmp_path_factory.mktemp("quota"), env={"quota_bytes": QUOTA}) as c:
        yield c


@pytest.fixture
def client(quota_cluster: TestCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=quota_cluster.url, timeout=60) as c:
        yield c


def usage(client: httpx.Client, auth: dict[str, str]) -> dict[str, int]:
    r = client.get("/api/v1/usage", headers=auth)
    assert r.status_code == 200, r.text
    body: dict[str, int] = r.json()
    return body


def upload_pieces(client: httpx.Client, auth: dict[str, str], path: str, data: bytes,
                  piece: int = MiB // 2) -> tuple[httpx.Response, list[str]]:
    """Send ``data`` in fixed pieces (a commit takes any cut, as the browser's), then commit;
    returns the commit's answer and the hashes sent."""
    hashes, sent = [], []
    for start in range(0, len(data), piece):
        part = data[start:start + piece]
        digest = hashlib.sha256(part).hexdigest()
        hashes.append(digest)
        if client.post("/api/v1/chunks/missing", headers=auth,
                       json={"hashes": [digest]}).json()["missing"]:
            r = client.put(f"/api/v1/chunks/{digest}", headers=auth, content=part)
            assert r.status_code == 201, r.text
            sent.append(digest)
    return client.post("/api/v1/files/commit", headers=auth, json={
        "path": path, "size": len(data), "chunks": hashes, "parent_version": None}), sent


def test_a_failed_upload_costs_nothing(client: httpx.Client) -> None:
    auth = bearer(signup_and_login(client, "failed"))
    kept = random.Random(1).randbytes(3 * MiB)
    assert upload(client, auth, "/kept.bin", kept)[0].status_code == 201
    big = random.Random(2).randbytes(2 * MiB)
    r, sent = upload_pieces(client, auth, "/big.bin", big)  # its pieces are all stored...
    assert sent and r.status_code == 507, r.text  # ...but the commit does not fit
    assert r.json()["error"]["code"] == "quota_exceeded"
    assert "nothing was committed" in r.json()["error"]["message"]
    after = usage(client, auth)
    assert after["used_bytes"] == 3 * MiB and after["free_bytes"] == MiB
    assert after["staged_bytes"] == 2 * MiB
    # The failed upload's bytes do not stand in the way of what fits.
    small = random.Random(3).randbytes(MiB // 2)
    assert upload(client, auth, "/small.bin", small)[0].status_code == 201
    # Free space (delete, then purge the trash), and the staged chunks go in without being
    # sent again.
    assert client.request("DELETE", "/api/v1/files", headers=auth,
                          params={"path": "/kept.bin"}).status_code == 200
    assert usage(client, auth)["trash_bytes"] == 3 * MiB  # the trash still counts
    assert client.request("DELETE", "/api/v1/trash", headers=auth,
                          params={"path": "/kept.bin"}).status_code == 200
    r, sent = upload_pieces(client, auth, "/big.bin", big)
    assert r.status_code == 201 and sent == [], r.text
    final = usage(client, auth)
    assert final["used_bytes"] == 2 * MiB + MiB // 2 and final["staged_bytes"] == 0
    assert final["files"] == 2 and final["current_bytes"] == 2 * MiB + MiB // 2


def test_versions_and_trash_are_reported_apart(client: httpx.Client) -> None:
    auth = bearer(signup_and_login(client, "sizes"))
    v1, v2 = b"a" * 1000, b"b" * 3000
    r, _ = upload(client, auth, "/doc.txt", v1)
    assert upload(client, auth, "/doc.txt", v2, parent=r.json()["version"])[0].status_code \
        == 201
    assert upload(client, auth, "/gone.txt", b"c" * 500)[0].status_code == 201
    assert client.request("DELETE", "/api/v1/files", headers=auth,
                          params={"path": "/gone.txt"}).status_code == 200
    got = usage(client, auth)
    assert (got["files"], got["current_bytes"], got["versions_bytes"], got["trash_bytes"]) \
        == (1, 3000, 1000, 500)
    assert got["quota_bytes"] == QUOTA and got["free_bytes"] == QUOTA - got["used_bytes"]


def test_a_batch_of_commits_stops_at_the_quota(client: httpx.Client) -> None:
    auth = bearer(signup_and_login(client, "batch"))
    blobs = [random.Random(10 + i).randbytes(MiB + 1) for i in range(5)]
    commits = []
    for i, blob in enumerate(blobs):
        hashes = []
        for ref, piece in chunk_bytes(blob):
            assert client.put(f"/api/v1/chunks/{ref.hash}", headers=auth,
                              content=piece).status_code == 201
            hashes.append(ref.hash)
        commits.append({"path": f"/f{i}", "size": len(blob), "chunks": hashes,
                        "parent_version": None})
        if i == 2:
            break  # three staged files: 3 MiB + 3 B, under the staging allowance
    r = client.post("/api/v1/files/commit_batch", headers=auth, json={"commits": commits})
    assert r.status_code == 200, r.text
    assert [x["ok"] for x in r.json()["results"]] == [True, True, True]
    staged = []
    for ref, piece in chunk_bytes(blobs[3]):
        assert client.put(f"/api/v1/chunks/{ref.hash}", headers=auth,
                          content=piece).status_code == 201
        staged.append(ref.hash)
    r = client.post("/api/v1/files/commit_batch", headers=auth, json={"commits": [
        {"path": "/f3", "size": len(blobs[3]), "chunks": staged, "parent_version": None},
        {"path": "/f0-again", "size": len(blobs[0]), "chunks": commits[0]["chunks"],
         "parent_version": None}]})
    results = r.json()["results"]
    assert results[0]["ok"] is False and results[0]["error"]["code"] == "quota_exceeded"
    assert results[1]["ok"] is True  # the same bytes again cost nothing
    assert usage(client, auth)["used_bytes"] == 3 * (MiB + 1)


def test_a_commit_that_fails_in_a_batch_gives_its_bytes_back(client: httpx.Client) -> None:
    """A commit of a batch charged to the quota and then refused (here: its folder is a
    file) rolls back with its savepoint, and so does its charge: the next commit has the
    room it would have alone."""
    auth = bearer(signup_and_login(client, "batch-undo"))
    assert upload_pieces(client, auth, "/three", random.Random(20).randbytes(3 * MiB))[0] \
        .status_code == 201
    commits = []
    for path, size, seed in (("/three/under", MiB // 2, 21), ("/after", 3 * MiB // 4, 22)):
        piece = random.Random(seed).randbytes(size)
        digest = hashlib.sha256(piece).hexdigest()
        assert client.put(f"/api/v1/chunks/{digest}", headers=auth,
                          content=piece).status_code == 201
        commits.append({"path": path, "size": size, "chunks": [digest],
                        "parent_version": None})
    r = client.post("/api/v1/files/commit_batch", headers=auth, json={"commits": commits})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert results[0]["ok"] is False and results[0]["error"]["code"] == "already_exists"
    assert results[1]["ok"] is True, results[1]  # 3 MiB + 3/4 fit; with the 1/2 they did not
    assert usage(client, auth)["used_bytes"] == 3 * MiB + 3 * MiB // 4


def test_du_prints_human_units_and_json(quota_cluster: TestCluster, tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "PATH": "/usr/bin:/bin",
           "MINIDROPBOX_SERVER": quota_cluster.url, "COLUMNS": "200"}

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(BIN), *args], input=stdin, capture_output=True, text=True,
                              env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc

    run("signup", "duuser", "--password-stdin", stdin=PASSWORD + "\n" + PASSWORD + "\n")
    run("login", "duuser", "--password-stdin", stdin=PASSWORD + "\n")
    (tmp_path / "one.bin").write_bytes(random.Random(4).randbytes(MiB + MiB // 2))
    run("put", str(tmp_path / "one.bin"), "/")
    text = run("du").stdout
    assert "used   1.5 MiB of 4.0 MiB (38%)" in text, text
    assert "free   2.5 MiB" in text and "files  1.5 MiB in 1 file" in text, text
    assert "trash  0 B" in text, text
    assert run("quota").stdout == text
    body = json.loads(run("--json", "du").stdout)
    assert body["used_bytes"] == MiB + MiB // 2 and body["quota_bytes"] == QUOTA


def test_receipts_presented_together_stop_at_the_quota(client: httpx.Client) -> None:
    """Receipts recorded in one request count one after the other: those that fit are the
    account's, the rest are refused one by one (and a chunk named twice counts once)."""
    auth = bearer(signup_and_login(client, "receipts"))
    wait_for_grants(client, auth)
    blobs = [random.Random(30 + i).randbytes(3 * MiB // 2) for i in range(3)]
    receipts = [r for b in blobs for r in send_direct(client, auth, b)]
    r = present(client, auth, receipts + receipts[:2])
    assert r.status_code == 200, r.text
    hashes = [hashlib.sha256(b).hexdigest() for b in blobs]
    assert r.json()["recorded"] == hashes[:2]
    [refused] = r.json()["refused"]
    assert refused["hash"] == hashes[2] and refused["error"]["code"] == "quota_exceeded"
    assert usage(client, auth)["staged_bytes"] == 3 * MiB
