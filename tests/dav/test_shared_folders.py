"""Shared folders through WebDAV: each member sees the folder at their own mount path with
their role enforced; a file in it has one set of locks and dead properties for every member;
properties follow the entry whatever route deletes or moves it; a member deleting the mount
point leaves the folder."""

from __future__ import annotations

import httpx
import sqlalchemy

from tests.dav.conftest import DavUser, new_dav_user
from tests.harness import TestCluster

LOCKINFO = (b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
            b"</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>")


def _api(user: DavUser) -> httpx.Client:
    return httpx.Client(base_url=user.base, headers=user.api, timeout=60)


def _share(owner: DavUser, path: str, member: DavUser, role: str, as_path: str) -> None:
    with _api(owner) as api:
        r = api.post("/api/v1/shares/folders",
                     json={"path": path, "username": member.username, "role": role})
        assert r.status_code == 201, r.text
    with _api(member) as api:
        (invite,) = api.get("/api/v1/shares/invites").json()["invites"]
        r = api.post(f"/api/v1/shares/invites/{invite['invite_id']}/accept",
                     json={"as_path": as_path})
        assert r.status_code == 201, r.text


def _set_prop(c: httpx.Client, url: str, value: str) -> None:
    body = (b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
            b'<t:colour xmlns:t="urn:t">' + value.encode() + b"</t:colour>"
            b"</D:prop></D:set></D:propertyupdate>")
    r = c.request("PROPPATCH", url, content=body)
    assert r.status_code == 207 and b"200 OK" in r.content, r.text


def _prop(c: httpx.Client, url: str) -> bytes | None:
    """The ``urn:t colour`` dead property's value (None: not set)."""
    r = c.request("PROPFIND", url, headers={"Depth": "0"}, content=(
        b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop>'
        b'<t:colour xmlns:t="urn:t"/></D:prop></D:propfind>'))
    assert r.status_code == 207, r.text
    if b"404 Not Found" in r.content:
        return None
    start = r.content.index(b">", r.content.index(b"colour")) + 1
    return r.content[start:r.content.index(b"</", start)]


def test_mounts_appear_with_roles_and_shared_locks_and_properties(
        dav_cluster: TestCluster) -> None:
    alice, bob, carol = (new_dav_user(dav_cluster.url, n) for n in ("alice", "bob", "carol"))
    with alice.client() as a, bob.client() as b, carol.client() as c:
        assert a.request("MKCOL", "/dav/Team").status_code == 201
        assert a.put("/dav/Team/plan.txt", content=b"by alice").status_code == 201
        _share(alice, "/Team", bob, "editor", "/From Alice")
        _share(alice, "/Team", carol, "viewer", "/Viewing")

        listing = b.request("PROPFIND", "/dav/", headers={"Depth": "1"})
        assert listing.status_code == 207 and b"/dav/From%20Alice/" in listing.content
        assert b.get("/dav/From%20Alice/plan.txt").content == b"by alice"
        assert b.put("/dav/From%20Alice/by-bob.txt", content=b"bob").status_code == 201
        assert a.get("/dav/Team/by-bob.txt").content == b"bob"
        assert b.request("MKCOL", "/dav/From%20Alice/sub").status_code == 201

        # The viewer reads, and every write is refused.
        assert c.get("/dav/Viewing/plan.txt").content == b"by alice"
        for method, url, headers, body in [
                ("PUT", "/dav/Viewing/x.txt", {}, b"x"),
                ("PUT", "/dav/Viewing/plan.txt", {}, b"x"),
                ("MKCOL", "/dav/Viewing/new", {}, b""),
                ("DELETE", "/dav/Viewing/plan.txt", {}, b""),
                ("MOVE", "/dav/Viewing/plan.txt",
                 {"Destination": f"{carol.dav_url}Viewing/p.txt"}, b""),
                ("MOVE", "/dav/Viewing/plan.txt", {"Destination": f"{carol.dav_url}p.txt"},
                 b"")]:
            r = c.request(method, url, headers=headers, content=body)
            assert r.status_code == 403, (method, url, r.status_code, r.text)
        assert a.get("/dav/Team/plan.txt").content == b"by alice"

        # One file, one set of dead properties, whoever set them and from whichever path.
        _set_prop(a, "/dav/Team/plan.txt", "teal")
        assert _prop(b, "/dav/From%20Alice/plan.txt") == b"teal"
        assert _prop(c, "/dav/Viewing/plan.txt") == b"teal"
        # ...and one set of locks: Bob's lock holds against Alice.
        lock = b.request("LOCK", "/dav/From%20Alice/plan.txt", content=LOCKINFO)
        assert lock.status_code == 200, lock.text
        assert a.put("/dav/Team/plan.txt", content=b"alice again").status_code == 423
        token = lock.headers["lock-token"]
        assert b.put("/dav/From%20Alice/plan.txt", content=b"bob's edit",
                     headers={"If": f"({token})"}).status_code == 204
        assert b.request("UNLOCK", "/dav/From%20Alice/plan.txt",
                         headers={"Lock-Token": token}).status_code == 204
        assert a.get("/dav/Team/plan.txt").content == b"bob's edit"

        # A member deleting the mount point leaves (the owner deleting it: see
        # tests/sharing/test_owner_deletes.py).
        assert b.request("DELETE", "/dav/From%20Alice").status_code == 204
        assert b.get("/dav/From%20Alice/plan.txt").status_code == 404
        with _api(alice) as api:
            members = api.get("/api/v1/shares/folders/members", params={"path": "/Team"})
            assert [m["username"] for m in members.json()["members"]] == [
                alice.username, carol.username]
        assert c.get("/dav/Viewing/by-bob.txt").content == b"bob"


def test_dead_properties_follow_the_entry_by_any_route(dav_user: DavUser,
                                                       dav: httpx.Client) -> None:
    assert dav.request("MKCOL", "/dav/props").status_code == 201
    assert dav.put("/dav/props/a.txt", content=b"a").status_code == 201
    _set_prop(dav, "/dav/props/a.txt", "red")
    with _api(dav_user) as api:
        # Moved by the API (as a sync client does): the property goes along.
        r = api.post("/api/v1/files/move", json={"from": "/props", "to": "/moved"})
        assert r.status_code == 200, r.text
        assert _prop(dav, "/dav/moved/a.txt") == b"red"
        # Deleted by the API: a new file at the same path starts with none, and so does
        # the old one back from the trash.
        assert api.delete("/api/v1/files", params={"path": "/moved/a.txt"}).status_code == 200
        assert dav.put("/dav/moved/a.txt", content=b"new").status_code == 201
        assert _prop(dav, "/dav/moved/a.txt") is None


def test_mount_points_from_memberships_match_a_walk_of_the_tree(
        dav_cluster: TestCluster) -> None:
    """Mount points are read from the caller's memberships (``shares.mount_points``, used by
    the API and WebDAV alike) rather than by walking their whole tree: the same mounts and
    roles as walking it finds (``shares.mounts_under`` and the active memberships), deepest
    first, for an owner, an editor with two, a viewer, a member whose mount point is in the
    trash, and one only invited."""
    from minidropbox.metadata import shares
    from minidropbox.metadata.db import Database
    from minidropbox.service.accounts import Principal
    from minidropbox.service.mounts import SharedFileService

    alice, bob, carol, dave = (new_dav_user(dav_cluster.url, n)
                               for n in ("ma", "mb", "mc", "md"))
    with alice.client() as a, bob.client() as b:
        for folder in ("/dav/One", "/dav/Two", "/dav/Three"):
            assert a.request("MKCOL", folder).status_code == 201
        _share(alice, "/One", bob, "editor", "/Deep/From Alice")
        assert b.request("MKCOL", "/dav/Deep/From%20Alice/x").status_code == 201
        _share(alice, "/Two", bob, "viewer", "/Two of hers")
        _share(alice, "/One", carol, "viewer", "/Alices")
        _share(alice, "/Three", carol, "editor", "/Gone")
        with carol.client() as c:
            assert c.request("DELETE", "/dav/Gone").status_code == 204  # leaves the folder
        with _api(alice) as api:  # invited, never accepted
            assert api.post("/api/v1/shares/folders", json={
                "path": "/Three", "username": dave.username, "role": "editor"}
                ).status_code == 201
    url = dav_cluster.api.env.get("MINIDROPBOX_DATABASE_URL") or \
        f"sqlite:///{dav_cluster.tmp / 'api-data' / 'metadata.db'}"
    db = Database(url)
    try:
        files = SharedFileService(db)
        with db.read() as conn:
            for user in (alice, bob, carol, dave):
                row = conn.execute(sqlalchemy.text(
                    "SELECT users.id, min(namespaces.id) FROM users JOIN namespaces "
                    "ON namespaces.owner_id = users.id WHERE username = :u GROUP BY users.id"),
                    {"u": user.username}).one()
                who = Principal(row[0], user.username, "test", row[1], False, None)
                roles = dict(conn.execute(sqlalchemy.text(
                    "SELECT namespace_id, role FROM share_members WHERE user_id = :u "
                    "AND state = 'active'"), {"u": row[0]}).all())
                expected = sorted((m["path"], m["mount_namespace_id"],
                                   roles[m["mount_namespace_id"]])
                                  for m in shares.mounts_under(conn, row[1], "/")
                                  if m["mount_namespace_id"] in roles)
                assert sorted(shares.mount_points(conn, row[1], row[0])) == expected
                found = files.mounts(who, conn)
                assert sorted((m.path, m.namespace_id, m.role) for m in found) == expected
                assert [len(m.path) for m in found] == sorted(
                    (len(m.path) for m in found), reverse=True)
                if user is bob:
                    assert sorted(m[2] for m in expected) == ["editor", "viewer"]
    finally:
        db.dispose()
