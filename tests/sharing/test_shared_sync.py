"""Two accounts, two ``minidropbox sync`` daemons, one shared folder: they converge on edits,
renames and a conflict; a viewer's client never uploads."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.conftest import PASSWORD, bearer
from tests.e2e.sync_harness import SyncClient, signup, wait_until
from tests.harness import TestCluster

CONFLICT = "conflicted copy"


def _login(url: str, name: str) -> httpx.Client:
    r = httpx.post(url + "/api/v1/auth/login", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return httpx.Client(base_url=url, timeout=30, headers=bearer(r.json()))


def _share(url: str, owner: str, folder: str, member: str, role: str, at: str) -> None:
    with _login(url, owner) as o, _login(url, member) as m:
        r = o.post("/api/v1/shares/folders", json={"path": folder, "username": member,
                                                   "role": role})
        assert r.status_code == 201, r.text
        invite = m.get("/api/v1/shares/invites").json()["invites"][-1]["invite_id"]
        r = m.post(f"/api/v1/shares/invites/{invite}/accept", json={"as_path": at})
        assert r.status_code == 201, r.text


def test_two_accounts_converge_on_a_shared_folder(share_cluster: TestCluster,
                                                   tmp_path: Path) -> None:
    url = share_cluster.url
    alice, bob = signup(url), signup(url)
    with _login(url, alice) as http:
        assert http.post("/api/v1/files/folder", json={"path": "/Team"}).status_code == 201
    _share(url, alice, "/Team", bob, "editor", "/Shared/Team")
    # Alice syncs the shared folder itself; Bob his whole tree, the folder mounted in it.
    a = SyncClient(url, tmp_path, "alice-laptop", alice, remote="/Team")
    b = SyncClient(url, tmp_path, "bob-desktop", bob)
    team = "/Shared/Team"
    try:
        a.start()
        b.start()
        wait_until(lambda: "idle" in a.log() and "idle" in b.log(), timeout=30,
                   message="both idle")
        a.write("/plan.txt", b"alice's plan")
        a.write("/docs/notes.md", b"notes")
        wait_until(lambda: b.tree().get(f"{team}/docs/notes.md") == b"notes"
                   and b.tree().get(f"{team}/plan.txt") == b"alice's plan", timeout=30,
                   message="Alice's files at Bob's")
        b.write(f"{team}/plan.txt", b"bob's edit of the plan")
        wait_until(lambda: a.tree().get("/plan.txt") == b"bob's edit of the plan",
                   timeout=30, message="Bob's edit at Alice's")
        (b.root / "Shared/Team/docs").rename(b.root / "Shared/Team/documents")
        wait_until(lambda: a.tree().get("/documents/notes.md") == b"notes"
                   and "/docs" not in a.tree(), timeout=30, message="Bob's rename at Alice's")
        # Both edit the same file at once: one conflicted copy, named after the loser's device.
        a.write("/plan.txt", b"alice again")
        b.write(f"{team}/plan.txt", b"bob again")

        def settled() -> bool:
            ours = {p: v for p, v in a.tree().items()}
            theirs = {p[len(team):]: v for p, v in b.tree().items() if p.startswith(team + "/")}
            return ours == theirs and any(CONFLICT in p for p in ours)

        wait_until(settled, timeout=40, message="the conflict settled on both sides")
        tree = a.tree()
        copies = [p for p in tree if CONFLICT in p]
        assert len(copies) == 1, tree
        loser = "alice-laptop" if tree["/plan.txt"] == b"bob again" else "bob-desktop"
        assert copies[0].startswith(f"/plan ({CONFLICT}, {loser}, "), copies
        assert sorted(v for v in tree.values() if v and b"again" in v) == [
            b"alice again", b"bob again"]
    finally:
        for client in (a, b):
            client.stop()
            print(f"--- sync log of {client.device} ---\n{client.log()}")


def test_a_viewers_sync_never_uploads(share_cluster: TestCluster, tmp_path: Path) -> None:
    url = share_cluster.url
    alice, carol = signup(url), signup(url)
    with _login(url, alice) as http:
        r = http.put("/api/v1/files/content", params={"path": "/Read/only.txt"},
                     content=b"from alice")
        assert r.status_code == 201
    _share(url, alice, "/Read", carol, "viewer", "/Read")
    c = SyncClient(url, tmp_path, "carol-laptop", carol)
    c.once()
    assert c.tree()["/Read/only.txt"] == b"from alice"
    time.sleep(0.5)  # older than the settling time, so the next round reads the edits
    c.write("/Read/only.txt", b"carol's local edit")
    c.write("/Read/new.txt", b"carol's new file")
    c.write("/mine.txt", b"carol's own file")
    result = c.once(ok=False)
    report = result.stdout + result.stderr
    assert "read-only" in report, report
    with _login(url, alice) as http:
        listing = http.get("/api/v1/files/list", params={"path": "/Read"}).json()
        assert [e["name"] for e in listing["entries"]] == ["only.txt"]
        r = http.get("/api/v1/files/content", params={"path": "/Read/only.txt"})
        assert r.content == b"from alice"
    with _login(url, carol) as http:
        assert http.get("/api/v1/files/content", params={"path": "/mine.txt"}).status_code \
            == 200  # her own files still go up
    assert c.tree()["/Read/only.txt"] == b"carol's local edit"  # kept locally
    assert c.tree()["/Read/new.txt"] == b"carol's new file"
