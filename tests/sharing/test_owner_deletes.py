"""The owner deleting a shared folder (or a folder holding one) deletes it, as any folder of
theirs: it is unshared first, so every member loses it at once, and it goes to the owner's
trash with its contents, history and trash, restorable as a plain folder. Nothing is lost.
Through the API, the CLI and WebDAV (which the web app's delete shares with the API)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.sync_harness import SyncClient, signup
from tests.e2e.test_cli_files import Cli
from tests.harness import TestCluster
from tests.sharing.conftest import Person
from tests.sharing.test_shared_sync import _login, _share


def _journal_paths(person: Person, cursor: str) -> list[tuple[str, str]]:
    return [(c["op"], c["path"]) for c in person.changes(cursor)]


def test_the_owner_deleting_a_shared_folder_unshares_it_into_her_trash(person: Any) -> None:
    alice, bob, carol = person("alice"), person("bob"), person("carol")
    alice.put("/Team/plan.txt", b"alice's plan")
    alice.share("/Team", bob, "editor", as_path="/From Alice")
    alice.share("/Team", carol, "viewer")
    bob.put("/From Alice/by-bob.txt", b"bob's file")
    bob.put("/From Alice/by-bob.txt", b"bob's file, v2")
    bob.ok("DELETE", "/api/v1/files", params={"path": "/From Alice/plan.txt"})  # in its trash
    bob_cursor, carol_cursor = bob.cursor(), carol.cursor()

    done = alice.ok("DELETE", "/api/v1/files", params={"path": "/Team"})
    assert done["path"] == "/Team" and done["unshared"] == 2 and done["deleted"] == 2

    # Members lose it at once, with the delete of their own mount point in their journal.
    for member, mount, cursor in ((bob, "/From Alice", bob_cursor),
                                  (carol, "/Team", carol_cursor)):
        assert ("delete", mount) in _journal_paths(member, cursor)
        assert member.paths() == []
        assert member.ok("GET", "/api/v1/shares/folders")["folders"] == []
        r = member.http.get("/api/v1/files/content", params={"path": f"{mount}/by-bob.txt"})
        assert r.status_code == 404, r.text
    # The owner's trash holds it; it comes back whole, as a plain folder, history and all.
    assert "/Team" not in alice.paths()
    assert "/Team" in [e["path"] for e in alice.ok("GET", "/api/v1/trash")["entries"]]
    alice.ok("POST", "/api/v1/trash/restore", json={"path": "/Team"})
    assert alice.paths("/Team") == ["/Team/by-bob.txt"]
    assert alice.get("/Team/by-bob.txt") == b"bob's file, v2"
    versions = alice.ok("GET", "/api/v1/files/versions", params={"path": "/Team/by-bob.txt"})
    assert [v["author"] for v in versions["versions"]] == [bob.name, bob.name]
    alice.ok("POST", "/api/v1/trash/restore", json={"path": "/Team/plan.txt"})
    assert alice.get("/Team/plan.txt") == b"alice's plan"  # the folder's own trash came too
    assert alice.ok("GET", "/api/v1/shares/folders")["folders"] == []
    assert bob.paths() == [] and carol.paths() == []  # restoring does not re-share


def test_deleting_a_folder_that_holds_shared_folders(person: Any) -> None:
    alice, bob = person("alice"), person("bob")
    alice.put("/Work/Mine/a.txt", b"a")  # alice owns /Work/Mine
    alice.share("/Work/Mine", bob, "viewer")
    bob.put("/Theirs/b.txt", b"b")  # bob owns /Theirs, mounted at alice's /Work/Theirs
    bob.share("/Theirs", alice, "editor", as_path="/Work/Theirs")
    assert sorted(alice.paths("/Work")) == ["/Work/Mine", "/Work/Mine/a.txt", "/Work/Theirs",
                                            "/Work/Theirs/b.txt"]

    done = alice.ok("DELETE", "/api/v1/files", params={"path": "/Work"})
    assert done["unshared"] == 1  # bob lost /Mine; alice left bob's /Theirs
    assert [p for p in bob.paths() if p.startswith("/Mine")] == []
    assert bob.paths() == ["/Theirs", "/Theirs/b.txt"]  # his own folder is untouched
    assert bob.ok("GET", "/api/v1/shares/folders/members", params={"path": "/Theirs"})[
        "members"] == [{"username": bob.name, "role": "owner", "state": "active"}]
    alice.ok("POST", "/api/v1/trash/restore", json={"path": "/Work"})
    assert alice.paths("/Work") == ["/Work/Mine", "/Work/Mine/a.txt"]


def test_rm_of_a_shared_folder_says_who_lost_it(share_cluster: TestCluster, person: Any,
                                                  tmp_path: Path) -> None:
    bob = person("bob")
    name = f"alice-{tmp_path.name[-8:]}".lower()[:32]
    alice = Cli(share_cluster.url, tmp_path / "alice").signup_and_login(name)
    alice.run("mkdir", "/Club")
    alice.run("share", "folder", "/Club", bob.name, "--role", "editor")
    invite = bob.ok("GET", "/api/v1/shares/invites")["invites"][-1]["invite_id"]
    bob.ok("POST", f"/api/v1/shares/invites/{invite}/accept", 201, json={})
    bob.put("/Club/rules.txt", b"rules")

    out = alice.run("rm", "/Club").stdout.strip()
    assert out.count("\n") == 0, out
    assert "Moved /Club to the trash" in out and "1 member(s) lost it" in out, out
    assert bob.paths() == []
    alice.run("undelete", "/Club")
    assert "rules.txt" in alice.run("ls", "/Club").stdout
    assert "No such" not in alice.run("ls", "/Club").stdout


def test_webdav_delete_of_a_shared_folder(share_cluster: TestCluster, person: Any) -> None:
    alice, bob = person("alice"), person("bob")
    alice.put("/Dav/x.txt", b"x")
    alice.share("/Dav", bob, "editor")
    app = alice.ok("POST", "/api/v1/app-passwords", 201, json={"name": "dav"})
    with httpx.Client(base_url=share_cluster.url, timeout=60,
                      auth=(alice.name, app["password"])) as dav:
        assert dav.request("DELETE", "/dav/Dav").status_code == 204
        assert dav.request("PROPFIND", "/dav/Dav", headers={"Depth": "0"}).status_code == 404
    assert bob.paths() == []
    assert "/Dav" in [e["path"] for e in alice.ok("GET", "/api/v1/trash")["entries"]]


def test_the_owner_deleting_it_in_her_sync_folder(share_cluster: TestCluster,
                                                   tmp_path: Path) -> None:
    """From a sync folder too: the owner's local delete reaches the server (unshared, in her
    trash); a member's sync removes his copy but keeps his edit not yet uploaded."""
    url = share_cluster.url
    alice, bob = signup(url), signup(url)
    with _login(url, alice) as http:
        r = http.put("/api/v1/files/content", params={"path": "/Team/plan.txt"},
                     content=b"the plan")
        assert r.status_code == 201, r.text
    _share(url, alice, "/Team", bob, "editor", "/Team")
    a = SyncClient(url, tmp_path, "alice-laptop", alice)
    b = SyncClient(url, tmp_path, "bob-desktop", bob)
    a.once()
    b.once()
    assert a.tree()["/Team/plan.txt"] == b.tree()["/Team/plan.txt"] == b"the plan"
    b.write("/Team/draft.txt", b"bob's draft, not uploaded yet")

    shutil.rmtree(a.root / "Team")
    a.once()
    with _login(url, alice) as http:
        assert "/Team" not in [e["path"] for e in http.get(
            "/api/v1/files/list", params={"path": "/"}).json()["entries"]]
        trash = http.get("/api/v1/trash").json()["entries"]
        assert "/Team" in [e["path"] for e in trash]
    b.once()
    assert "/Team/plan.txt" not in b.tree()
    assert b.tree()["/Team/draft.txt"] == b"bob's draft, not uploaded yet"
    with _login(url, bob) as http:  # now a file of his own
        r = http.get("/api/v1/files/content", params={"path": "/Team/draft.txt"})
        assert r.content == b"bob's draft, not uploaded yet"
        assert http.get("/api/v1/shares/folders").json()["folders"] == []
