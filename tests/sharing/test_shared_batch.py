"""A commit batch reaching into shared folders: one write transaction per namespace it lands
in, each commit judged exactly as it would be alone (a viewer's refused, the owner's quota
charged commit by commit, a mount point's path in the caller's own tree), answered in the
order asked, with each namespace's journal as the commits one by one would leave it."""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy
from sqlalchemy import Connection

from minidropbox.metadata import accounts as account_repo
from minidropbox.metadata.db import Database
from minidropbox.service.accounts import Principal
from minidropbox.service.files import CommitRequest
from minidropbox.service.mounts import SharedFileService
from tests.conftest import bearer, signup_and_login
from tests.harness import TestCluster
from tests.sharing.conftest import Person

KiB = 1024
QUOTA = 200 * KiB  # every account's; files this small are one chunk each
MTIME = 1_700_000_000.0

# (path, size, parent_version) of one batch, and what each commit alone answers.
BATCH: list[tuple[str, int, int | None, str]] = [
    ("/mine/a.txt", 1 * KiB, None, "ok"),
    ("/Team/x.txt", 2 * KiB, None, "ok"),  # alice's folder, the member an editor
    ("/Read/y.txt", 1 * KiB, None, "read_only"),  # alice's folder, the member a viewer
    ("/Team", 1 * KiB, None, "already_exists"),  # the mount point: a folder of their own
    ("/Full/big.bin", 60 * KiB, None, "quota_exceeded"),  # carol has 50 KiB left
    ("/Full/s1.bin", 30 * KiB, None, "ok"),
    ("/Full/s2.bin", 30 * KiB, None, "quota_exceeded"),  # fits alone, not after s1
    ("/Full/s1.bin/under", 10 * KiB, None, "already_exists"),  # charged to carol, then fails
    ("/Full/j.bin", 15 * KiB, None, "ok"),  # fits only once that charge is taken back
    ("/Team/sub/deep.txt", 3 * KiB, None, "ok"),
    ("/Team/x.txt", 4 * KiB, None, "version_conflict"),  # made above, in this batch
    ("/Read", 1 * KiB, None, "already_exists"),  # a viewer's mount point is theirs too
    ("/Team/../x", 1 * KiB, None, "invalid_path"),
    ("/mine/b.txt", 1 * KiB, None, "ok"),
]


@dataclass
class World:
    """A member of two of alice's folders (/Team as editor, /Read as viewer) and one of
    carol's (/Full, editor), carol with 50 KiB of her quota left."""

    member: Person
    alice: Person
    carol: Person

    def people(self) -> tuple[Person, Person, Person]:
        return self.member, self.alice, self.carol

    def close(self) -> None:
        for who in self.people():
            who.http.close()


@pytest.fixture(scope="module")
def batch_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    with TestCluster(tmp_path_factory.mktemp("shared-batch"), nodes=1, replicas=1,
                     env={"quota_bytes": QUOTA}) as c:
        yield c


def _person(cluster: TestCluster, prefix: str) -> Person:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=cluster.url, timeout=60) as anon:
        tokens = signup_and_login(anon, name)
    return Person(name, httpx.Client(base_url=cluster.url, timeout=60, headers=bearer(tokens)))


def _world(cluster: TestCluster) -> World:
    w = World(_person(cluster, "member"), _person(cluster, "alice"), _person(cluster, "carol"))
    for folder in ("/Team", "/Read"):
        w.alice.ok("POST", "/api/v1/files/folder", 201, json={"path": folder})
    w.alice.put("/Read/seen.txt", b"read me")
    w.carol.put("/own.bin", random.Random(uuid.uuid4().int).randbytes(150 * KiB))
    w.carol.ok("POST", "/api/v1/files/folder", 201, json={"path": "/Full"})
    w.alice.share("/Team", w.member)
    w.alice.share("/Read", w.member, "viewer")
    w.carol.share("/Full", w.member)
    return w


def _commits(who: Person, batch: list[tuple[str, int, int | None, str]],
             seed: int) -> list[dict[str, Any]]:
    """The commits of ``batch``, their chunks sent by ``who`` (the same bytes for the same
    seed), plus one naming a chunk never sent."""
    blobs = [random.Random(seed * 1000 + i).randbytes(size)
             for i, (_, size, _, _) in enumerate(batch)]
    parts = [(hashlib.sha256(b).hexdigest(), b) for b in blobs]
    r = who.http.post("/api/v1/chunks/batch",
                      files=[(h, (h, d, "application/octet-stream")) for h, d in parts])
    assert r.status_code == 201, r.text
    return [{"path": path, "size": size, "chunks": [h], "parent_version": parent,
             "mtime": MTIME}
            for (path, size, parent, _), (h, _) in zip(batch, parts, strict=True)]


def _alone(who: Person, commit: dict[str, Any]) -> dict[str, Any]:
    """``commit`` on its own, answered as a batch answers it."""
    r = who.http.post("/api/v1/files/commit", json=commit)
    if r.status_code == 201:
        return {"ok": True, "entry": r.json()}
    assert r.status_code >= 400, r.text
    return {"ok": False, "path": commit["path"], "error": r.json()["error"]}


def _judged(result: dict[str, Any]) -> tuple[Any, ...]:
    if result["ok"]:
        return True, result["entry"]
    return False, result["path"], result["error"]["code"], result["error"]["message"]


def _journals(w: World, cursors: list[str]) -> list[dict[str, list[tuple[Any, ...]]]]:
    """Each person's journal since ``cursors``, in order per top folder: namespaces are
    committed one after another, so only the order inside each is the order asked."""
    out = []
    for who, cursor in zip(w.people(), cursors, strict=True):
        by_folder: dict[str, list[tuple[Any, ...]]] = {}
        for c in who.changes(cursor):
            row = (c["op"], c["path"], c.get("version"), c.get("size"), c.get("content_hash"))
            by_folder.setdefault(c["path"].split("/")[1], []).append(row)
        out.append(by_folder)
    return out


def test_a_batch_is_judged_as_its_commits_alone(batch_cluster: TestCluster) -> None:
    batched, alone = _world(batch_cluster), _world(batch_cluster)
    try:
        commits = _commits(batched.member, BATCH, seed=1)
        commits.append({**commits[0], "path": "/Team/missing.txt", "chunks": ["ab" * 32]})
        same = _commits(alone.member, BATCH, seed=1)
        same.append({**same[0], "path": "/Team/missing.txt", "chunks": ["ab" * 32]})
        starts = [[who.cursor() for who in w.people()] for w in (batched, alone)]

        r = batched.member.http.post("/api/v1/files/commit_batch", json={"commits": commits})
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        one_by_one = [_alone(alone.member, c) for c in same]

        codes = [x["entry"]["path"] if x["ok"] else x["error"]["code"] for x in results]
        assert codes == [
            path if want == "ok" else want for path, _, _, want in BATCH] + ["missing_chunk"]
        assert [_judged(x) for x in results] == [_judged(x) for x in one_by_one]
        refused = results[4]["error"]["message"]
        assert refused == "The owner of /Full has no room left for this file."
        assert _journals(batched, starts[0]) == _journals(alone, starts[1])
        team = [row[:2] for row in _journals(batched, starts[0])[1]["Team"]]
        assert team == [("commit", "/Team/x.txt"), ("mkdir", "/Team/sub"),
                        ("commit", "/Team/sub/deep.txt")]
        for w in (batched, alone):  # carol paid for s1 and j, and nothing else
            assert w.carol.ok("GET", "/api/v1/usage")["used_bytes"] == 195 * KiB
    finally:
        batched.close()
        alone.close()


class CountingDatabase(Database):
    """The cluster's database, counting the write transactions opened on it."""

    writes = 0

    @contextmanager
    def write(self) -> Iterator[Connection]:
        self.writes += 1
        with super().write() as conn:
            yield conn


def test_one_write_transaction_per_namespace(batch_cluster: TestCluster) -> None:
    """60 commits into the member's tree and two shared folders, and 5 a viewer may not make:
    three write transactions (one commit at a time took 60), none for the refused ones."""
    w = _world(batch_cluster)
    db = CountingDatabase(batch_cluster.database_url)
    try:
        batch = [(f"/{folder}/f{i:02}.txt", 512, None, "ok")
                 for i in range(20) for folder in ("mine", "Team", "Full")]
        batch += [(f"/Read/r{i}.txt", 512, None, "read_only") for i in range(5)]
        commits = _commits(w.member, batch, seed=2)
        with db.read() as conn:
            user_id = conn.execute(sqlalchemy.text(
                "SELECT id FROM users WHERE username = :u"), {"u": w.member.name}).scalar_one()
            root = account_repo.root_namespace(conn, user_id)
        member = Principal(user_id, w.member.name, "test", root, False, QUOTA)
        files = SharedFileService(db)
        results = files.commit_batch(member, [
            CommitRequest(c["path"], c["size"], c["chunks"], None, MTIME) for c in commits])
        assert db.writes == 3
        assert [x["entry"]["path"] if x["ok"] else x["error"]["code"] for x in results] == [
            path if want == "ok" else want for path, _, _, want in batch]
        assert len(w.alice.paths("/Team")) == 20 and len(w.carol.paths("/Full")) == 20
    finally:
        db.dispose()
        w.close()
