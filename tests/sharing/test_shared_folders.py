"""Folders shared between accounts, through the API: members, roles, journals, removal."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from typing import Any

from websockets.sync.client import connect
from websockets.typing import Subprotocol

from tests.harness import TestCluster


def test_editors_and_viewers_share_one_folder(person: Any) -> None:
    alice, bob, carol = person("alice"), person("bob"), person("carol")
    alice.put("/Project/plan.txt", b"v1 by alice")
    alice.put("/Project/docs/spec.md", b"spec")
    alice.put("/elsewhere.txt", b"alice only")
    early_link = alice.link("/Project/plan.txt")  # made before sharing: still works after

    invited = alice.ok("POST", "/api/v1/shares/folders", 201, json={
        "path": "/Project", "username": bob.name, "role": "editor"})
    assert invited["state"] == "invited"
    (invite,) = bob.ok("GET", "/api/v1/shares/invites")["invites"]
    assert invite["name"] == "Project" and invite["owner"] == alice.name
    mounted = bob.ok("POST", f"/api/v1/shares/invites/{invite['invite_id']}/accept", 201,
                     json={})
    assert mounted["path"] == "/Project" and mounted["role"] == "editor"
    alice.share("/Project", carol, role="viewer", as_path="/Work/From Alice")

    assert alice.paths() == ["/elsewhere.txt", "/Project", "/Project/docs",
                             "/Project/docs/spec.md", "/Project/plan.txt"]
    assert bob.paths() == ["/Project", "/Project/docs", "/Project/docs/spec.md",
                           "/Project/plan.txt"]
    assert carol.paths("/Work") == ["/Work/From Alice", "/Work/From Alice/docs",
                                    "/Work/From Alice/docs/spec.md",
                                    "/Work/From Alice/plan.txt"]
    assert carol.get("/Work/From Alice/plan.txt") == b"v1 by alice"

    bob.put("/Project/plan.txt", b"v2 by bob")
    assert alice.get("/Project/plan.txt") == b"v2 by bob"
    versions = alice.ok("GET", "/api/v1/files/versions", params={"path": "/Project/plan.txt"})
    assert [(v["version"], v["author"]) for v in versions["versions"]] == [
        (2, bob.name), (1, alice.name)]
    link_bytes = bob.http.get(early_link["share_url"], params={"dl": 1}).content
    assert link_bytes == b"v2 by bob"

    # A viewer reads and gets a clear 403 on every write.
    for method, url, kwargs in [
            ("PUT", "/api/v1/files/content", {"params": {"path": "/Work/From Alice/x"},
                                              "content": b"x"}),
            ("POST", "/api/v1/files/folder", {"json": {"path": "/Work/From Alice/new"}}),
            ("POST", "/api/v1/files/move", {"json": {"from": "/Work/From Alice/plan.txt",
                                                     "to": "/Work/From Alice/p.txt"}}),
            ("DELETE", "/api/v1/files", {"params": {"path": "/Work/From Alice/plan.txt"}}),
            ("POST", "/api/v1/files/restore", {"json": {"path": "/Work/From Alice/plan.txt",
                                                        "version": 1}}),
            ("POST", "/api/v1/files/move", {"json": {"from": "/Work/From Alice/plan.txt",
                                                     "to": "/mine.txt"}})]:
        r = carol.http.request(method, url, **kwargs)
        assert r.status_code == 403 and r.json()["error"]["code"] == "read_only", (url, r.text)
    assert alice.get("/Project/plan.txt") == b"v2 by bob"
    # ...but may rename her own mount point, which nobody else sees.
    carol.ok("POST", "/api/v1/files/move", json={"from": "/Work/From Alice", "to": "/Alice"})
    assert carol.get("/Alice/plan.txt") == b"v2 by bob" and "/Project" in alice.paths()
    r = carol.http.post("/api/v1/shares/links", json={"path": "/Alice/plan.txt"})
    assert r.status_code == 403  # only the owner makes links into a shared folder

    members = bob.ok("GET", "/api/v1/shares/folders/members", params={"path": "/Project/docs"})
    assert [(m["username"], m["role"]) for m in members["members"]] == [
        (alice.name, "owner"), (bob.name, "editor"), (carol.name, "viewer")]
    alice.ok("POST", "/api/v1/shares/folders", 201, json={
        "path": "/Project", "username": carol.name, "role": "editor"})
    carol.put("/Alice/by-carol.txt", b"now an editor")
    assert alice.get("/Project/by-carol.txt") == b"now an editor"


def test_journals_carry_changes_at_each_members_paths(person: Any) -> None:
    alice, bob = person("alice"), person("bob")
    alice.put("/Team/a.txt", b"a")
    alice.share("/Team", bob, as_path="/Shared/T")
    start_a, start_b = alice.cursor(), bob.cursor()
    bob.put("/Shared/T/b.txt", b"b")
    bob.ok("POST", "/api/v1/files/move", json={"from": "/Shared/T/a.txt",
                                               "to": "/Shared/T/renamed.txt"})
    alice.put("/own.txt", b"not shared")
    seen_a = [(c["op"], c["path"], c.get("from_path")) for c in alice.changes(start_a)]
    seen_b = [(c["op"], c["path"], c.get("from_path")) for c in bob.changes(start_b)]
    assert seen_a == [("commit", "/Team/b.txt", None),
                      ("move", "/Team/renamed.txt", "/Team/a.txt"),
                      ("commit", "/own.txt", None)]
    assert seen_b == [("commit", "/Shared/T/b.txt", None),
                      ("move", "/Shared/T/renamed.txt", "/Shared/T/a.txt")]

    cursor = bob.cursor()
    started = time.monotonic()

    def later() -> None:
        time.sleep(0.3)
        alice.put("/Team/c.txt", b"c")

    threading.Thread(target=later).start()
    woke = bob.ok("GET", "/api/v1/changes/wait", params={"cursor": cursor, "timeout": 20})
    assert woke["changes"] is True and time.monotonic() - started < 10
    assert [c["path"] for c in bob.changes(cursor)] == ["/Shared/T/c.txt"]


def test_moves_across_the_shared_boundary(person: Any) -> None:
    alice, bob = person("alice"), person("bob")
    alice.ok("POST", "/api/v1/files/folder", 201, json={"path": "/Box"})
    alice.share("/Box", bob)
    bob.put("/draft.txt", b"bob's draft")
    bob.put("/folder/inner.txt", b"inner")
    cursor = alice.cursor()
    bob.ok("POST", "/api/v1/files/move", json={"from": "/draft.txt", "to": "/Box/draft.txt"})
    bob.ok("POST", "/api/v1/files/move", json={"from": "/folder", "to": "/Box/folder"})
    assert alice.get("/Box/draft.txt") == b"bob's draft"
    assert alice.get("/Box/folder/inner.txt") == b"inner"
    assert [(c["op"], c["path"]) for c in alice.changes(cursor)] == [
        ("add", "/Box/draft.txt"), ("add", "/Box/folder")]
    assert "/draft.txt" not in bob.paths()
    alice.ok("POST", "/api/v1/files/move", json={"from": "/Box/draft.txt", "to": "/kept.txt"})
    assert alice.get("/kept.txt") == b"bob's draft" and "/Box/draft.txt" not in bob.paths()
    r = alice.http.post("/api/v1/files/move", json={"from": "/Box", "to": "/Other/Box"})
    assert r.status_code == 200  # the owner moves her own mount point
    assert "/Box/folder/inner.txt" in bob.paths()


def test_members_never_claim_or_probe_chunks_outside_the_folder(person: Any) -> None:
    alice, bob = person("alice"), person("bob")
    private = os.urandom(5000)
    shared = os.urandom(6000)
    alice.put("/private.bin", private)
    alice.put("/Shared/inside.bin", shared)
    alice.share("/Shared", bob)
    hashes = [hashlib.sha256(private).hexdigest(), hashlib.sha256(shared).hexdigest()]
    assert bob.ok("POST", "/api/v1/chunks/missing", json={"hashes": hashes}) == {
        "missing": hashes}
    for h, data in zip(hashes, (private, shared), strict=True):
        r = bob.http.post("/api/v1/files/commit", json={
            "path": "/Shared/claimed.bin", "size": len(data), "chunks": [h],
            "parent_version": None})
        assert r.status_code == 400 and r.json()["error"]["code"] == "missing_chunk"
    assert bob.get("/Shared/inside.bin") == shared  # reading is what membership gives


def test_remove_leave_and_unshare_take_effect_at_once(person: Any,
                                                      share_cluster: TestCluster) -> None:
    alice, bob, carol = person("alice"), person("bob"), person("carol")
    alice.put("/Club/rules.txt", b"rules")
    alice.share("/Club", bob)
    alice.share("/Club", carol, role="viewer")
    url = share_cluster.url.replace("http://", "ws://") + "/api/v1/notifications"
    with connect(url, subprotocols=[Subprotocol("bearer"), Subprotocol(bob.token)],
                 open_timeout=10) as ws:
        first = ws.recv(timeout=10)
        cursor = bob.cursor()
        alice.ok("DELETE", "/api/v1/shares/folders/members", 204,
                 params={"path": "/Club", "username": bob.name})
        assert ws.recv(timeout=10) != first  # the removal itself is news
        assert [(c["op"], c["path"]) for c in bob.changes(cursor)] == [("delete", "/Club")]
        alice.put("/Club/after.txt", b"not for bob")
        try:
            extra = ws.recv(timeout=1.0)
        except TimeoutError:
            extra = None
        assert extra is None or '"ping"' in str(extra)
    assert bob.paths() == []
    r = bob.http.get("/api/v1/files/content", params={"path": "/Club/rules.txt"})
    assert r.status_code == 404

    carol.ok("POST", "/api/v1/shares/folders/leave", 204, json={"path": "/Club/rules.txt"})
    assert carol.paths() == []
    assert alice.http.post("/api/v1/shares/folders/leave",
                           json={"path": "/Club"}).status_code == 400
    alice.share("/Club", carol)
    alice.ok("POST", "/api/v1/shares/folders/unshare", 204, json={"path": "/Club"})
    assert carol.paths() == []
    assert alice.paths() == ["/Club", "/Club/after.txt", "/Club/rules.txt"]
    assert alice.ok("GET", "/api/v1/shares/folders") == {"folders": []}
    alice.put("/Club/again.txt", b"plain folder again")
    assert alice.get("/Club/again.txt") == b"plain folder again"


def test_a_listing_pages_across_own_and_shared_folders(person: Any) -> None:
    """One recursive listing of the caller's files and two mounted shared folders, paged by
    one cursor: every entry once, in the order of the whole listing."""
    alice, bob, carol = person("alice"), person("bob"), person("carol")
    alice.put("/A/one.txt", b"1")
    alice.put("/A/sub/two.txt", b"2")
    carol.put("/C/three.txt", b"3")
    alice.share("/A", bob, as_path="/m/A")
    carol.share("/C", bob, role="viewer", as_path="/m/B")
    for path in ("/m/0.txt", "/m/A0.txt", "/m/Az.txt", "/m/C.txt", "/z.txt", "/m/B-side.txt"):
        bob.put(path, b"own")
    whole = bob.paths()
    assert whole == sorted(whole, key=str.casefold) and len(whole) == len(set(whole))
    assert {"/m/A/one.txt", "/m/A/sub/two.txt", "/m/B/three.txt", "/m/Az.txt"} <= set(whole)
    for limit in (1, 2, 3):
        paged, cursor = [], None
        while True:
            params: dict[str, Any] = {"path": "/", "recursive": "true", "limit": limit}
            if cursor:
                params["cursor"] = cursor
            page = bob.ok("GET", "/api/v1/files/list", params=params)
            assert len(page["entries"]) <= limit
            paged += [e["path"] for e in page["entries"]]
            cursor = page["cursor"]
            if cursor is None:
                break
        assert paged == whole, limit
    # Inside one mount, and from a folder holding one.
    assert bob.paths("/m/A") == ["/m/A/one.txt", "/m/A/sub", "/m/A/sub/two.txt"]
    assert bob.paths("/m") == [p for p in whole if p.startswith("/m/")]


def test_many_files_in_one_answer_across_shared_folders(person: Any) -> None:
    """``POST /files/contents`` reads files from the caller's own tree and from folders shared
    with them in one request, each at the caller's path, in the order asked."""
    alice, bob = person("alice"), person("bob")
    alice.put("/Team/a.txt", b"team a")
    alice.put("/Team/sub/b.txt", b"team b")
    bob.put("/mine.txt", b"bob's own")
    alice.share("/Team", bob, as_path="/From Alice")
    asked = ["/From Alice/sub/b.txt", "/mine.txt", "/From Alice/a.txt", "/From Alice/gone",
             "/From Alice"]
    r = bob.http.post("/api/v1/files/contents", json={"files": [{"path": p} for p in asked]})
    assert r.status_code == 200, r.text
    body, pos, got = r.content, 0, []
    for _ in asked:
        end = body.index(b"\n", pos)
        head = json.loads(body[pos:end])
        pos = end + 1 + head.get("size", 0)
        got.append((head, body[end + 1:pos]))
    assert [(h.get("path"), data) for h, data in got[:3]] == [
        ("/From Alice/sub/b.txt", b"team b"), ("/mine.txt", b"bob's own"),
        ("/From Alice/a.txt", b"team a")]
    assert [h["error"]["code"] for h, _ in got[3:]] == ["not_found", "not_found"]
