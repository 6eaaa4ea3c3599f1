"""Server-side copy (``POST /files/copy``, ``minidropbox cp``) between a member's own files and
a shared folder, and between shared folders: no bytes move, roles are checked (a viewer copies
out, never in), the bytes new to the destination's owner are charged to them in the copy's
own transaction, and the number of entries one copy makes is bounded."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import bearer, signup_and_login
from tests.e2e.test_cli_files import Cli
from tests.harness import TestCluster
from tests.sharing.conftest import Person

KiB = 1024
QUOTA = 100 * KiB  # files this small are one chunk each
MAX_PER_CHANGE = 8


@pytest.fixture(scope="module")
def copy_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    with TestCluster(tmp_path_factory.mktemp("shared-copy"), nodes=1, replicas=1,
                     env={"quota_bytes": QUOTA,
                          "max_entries_per_change": MAX_PER_CHANGE}) as c:
        yield c


@pytest.fixture
def people(copy_cluster: TestCluster, tmp_path: Path) -> Iterator[Any]:
    made: list[Person] = []

    def make(prefix: str) -> Person:
        name = f"{prefix}-{tmp_path.name[-6:]}".lower().replace("_", "-")[:32]
        with httpx.Client(base_url=copy_cluster.url, timeout=60) as anon:
            tokens = signup_and_login(anon, name)
        made.append(Person(name, httpx.Client(base_url=copy_cluster.url, timeout=60,
                                              headers=bearer(tokens)), tokens["access_token"]))
        return made[-1]

    yield make
    for p in made:
        p.http.close()


def _data(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _copy(who: Person, src: str, dst: str, status: int = 201) -> Any:
    r = who.http.post("/api/v1/files/copy", json={"from": src, "to": dst})
    assert r.status_code == status, f"copy {src} {dst}: {r.status_code} {r.text}"
    return r.json()


def _used(who: Person) -> int:
    return int(who.ok("GET", "/api/v1/usage")["used_bytes"])


def test_copy_between_own_files_and_a_shared_folder(people: Any) -> None:
    alice, bob, carol = people("alice"), people("bob"), people("carol")
    alice.put("/Team/plan.bin", _data(40 * KiB, 1))
    alice.share("/Team", bob, "editor", as_path="/Work/Team")
    alice.share("/Team", carol, "viewer")
    bob.put("/mine.bin", _data(20 * KiB, 2))
    alice_used, bob_used, carol_used = _used(alice), _used(bob), _used(carol)
    cursor = alice.cursor()

    # In: an editor's own file into the shared folder; its bytes are now the owner's.
    made = _copy(bob, "/mine.bin", "/Work/Team/from-bob.bin")
    assert made["path"] == "/Work/Team/from-bob.bin"
    assert alice.get("/Team/from-bob.bin") == _data(20 * KiB, 2)
    assert ("commit", "/Team/from-bob.bin") in [(c["op"], c["path"])
                                                for c in alice.changes(cursor)]
    versions = alice.ok("GET", "/api/v1/files/versions", params={"path": "/Team/from-bob.bin"})
    assert [v["author"] for v in versions["versions"]] == [bob.name]
    assert _used(alice) == alice_used + 20 * KiB
    assert _used(bob) == bob_used  # he held those bytes already

    # Out: the whole shared folder (its mount point) into the member's own files.
    _copy(bob, "/Work/Team", "/Archive/Team")
    assert sorted(bob.paths("/Archive")) == ["/Archive/Team", "/Archive/Team/from-bob.bin",
                                             "/Archive/Team/plan.bin"]
    assert bob.get("/Archive/Team/plan.bin") == _data(40 * KiB, 1)
    assert _used(bob) == bob_used + 40 * KiB

    # A viewer copies out, never in, nor inside the folder.
    _copy(carol, "/Team/plan.bin", "/plan-copy.bin")
    assert carol.get("/plan-copy.bin") == _data(40 * KiB, 1)
    assert _used(carol) == carol_used + 40 * KiB
    refused = _copy(carol, "/plan-copy.bin", "/Team/back.bin", 403)
    assert refused["error"]["code"] == "read_only"
    assert _copy(carol, "/Team/plan.bin", "/Team/again.bin", 403)["error"]["code"] == \
        "read_only"
    assert "/Team/back.bin" not in alice.paths() and "/Team/again.bin" not in alice.paths()

    # Between two shared folders: bob's own shared folder into alice's.
    bob.put("/Bobs/notes.bin", _data(1 * KiB, 3))
    bob.share("/Bobs", alice, "viewer")
    _copy(bob, "/Bobs/notes.bin", "/Work/Team/notes.bin")
    assert alice.get("/Team/notes.bin") == _data(1 * KiB, 3)
    # The usual refusals stay clear.
    assert _copy(bob, "/Work/Team/none.bin", "/x.bin", 404)["error"]["code"] == "not_found"
    assert _copy(bob, "/mine.bin", "/Work/Team", 409)["error"]["code"] == "already_exists"
    assert _copy(bob, "/mine.bin", "/Work/Team/plan.bin", 409)["error"]["code"] == \
        "already_exists"


def test_a_copy_is_charged_to_the_destination_owner_or_refused_whole(people: Any) -> None:
    owner, editor = people("owner"), people("editor")
    owner.put("/Shared/own.bin", _data(60 * KiB, 10))  # owner: 60 of 100 KiB
    owner.share("/Shared", editor)
    editor.put("/Mine/a.bin", _data(30 * KiB, 11))
    editor.put("/Mine/b.bin", _data(20 * KiB, 12))  # editor: 50 of 100 KiB

    _copy(editor, "/Mine/a.bin", "/Shared/a.bin")  # owner: 90 KiB
    _copy(editor, "/Mine/a.bin", "/Shared/a-again.bin")  # the same bytes count once
    assert _used(owner) == 90 * KiB
    # 20 KiB more do not fit the owner's quota (the editor has plenty): nothing is copied.
    refused = _copy(editor, "/Mine", "/Shared/Mine", 507)
    assert refused["error"]["code"] == "quota_exceeded"
    assert "owner" in refused["error"]["message"]
    assert not [p for p in owner.paths() if p.startswith("/Shared/Mine")]
    assert _used(owner) == 90 * KiB
    # Out of the folder, the editor pays: 60 KiB more would make 110 of 100.
    assert _copy(editor, "/Shared/own.bin", "/own.bin", 507)["error"]["code"] == \
        "quota_exceeded"
    assert "/own.bin" not in editor.paths()
    assert _used(editor) == 50 * KiB


def test_one_copy_makes_a_bounded_number_of_entries(people: Any) -> None:
    owner, editor = people("bound-o"), people("bound-e")
    owner.ok("POST", "/api/v1/files/folder", 201, json={"path": "/Shared"})
    owner.share("/Shared", editor)
    for i in range(MAX_PER_CHANGE - 1):  # with its folder: exactly the bound
        editor.put(f"/Small/f{i}.txt", b"%d" % i)
    for i in range(MAX_PER_CHANGE):  # with its folder: one over
        editor.put(f"/Big/f{i}.txt", b"%d" % i)
    _copy(editor, "/Small", "/Shared/Small")
    assert len(owner.paths("/Shared/Small")) == MAX_PER_CHANGE - 1
    refused = _copy(editor, "/Big", "/Shared/Big", 400)
    assert refused["error"]["code"] == "too_many_entries"
    assert not [p for p in owner.paths() if p.startswith("/Shared/Big")]
    # Out of a shared folder too (the shared folder as a whole is one more entry).
    assert _copy(editor, "/Shared", "/All", 400)["error"]["code"] == "too_many_entries"
    assert "/All" not in editor.paths()


def test_cp_command_across_a_shared_folder(copy_cluster: TestCluster, people: Any,
                                           tmp_path: Path) -> None:
    owner = people("cli-o")
    name = f"cli-m-{tmp_path.name[-6:]}".lower().replace("_", "-")[:32]
    member = Cli(copy_cluster.url, tmp_path / "member").signup_and_login(name)
    owner.put("/Docs/spec.txt", b"the spec")
    owner.ok("POST", "/api/v1/shares/folders", 201,
             json={"path": "/Docs", "username": name, "role": "viewer"})
    invite = member.json("share", "invites")["invites"][-1]["invite_id"]
    member.run("share", "accept", str(invite))
    member.run("mkdir", "/Mine")
    out = member.run("cp", "/Docs/spec.txt", "/Mine/").stdout
    assert "Copied /Docs/spec.txt to /Mine/spec.txt" in out and "no bytes moved" in out
    assert member.run("cat", "/Mine/spec.txt").stdout == "the spec"
    line = member.fails("cp", "/Mine/spec.txt", "/Docs/back.txt", exit_code=3)
    assert "read-only" in line


def test_webdav_copy_out_of_and_into_a_shared_folder(copy_cluster: TestCluster,
                                                     people: Any) -> None:
    owner, viewer = people("dav-o"), people("dav-v")
    owner.put("/Pics/a.bin", _data(10 * KiB, 20))
    owner.share("/Pics", viewer, "viewer")
    app = viewer.ok("POST", "/api/v1/app-passwords", 201, json={"name": "dav"})
    with httpx.Client(base_url=copy_cluster.url, timeout=60,
                      auth=(viewer.name, app["password"])) as dav:
        r = dav.request("COPY", "/dav/Pics/a.bin", headers={"Destination": "/dav/a-copy.bin"})
        assert r.status_code == 201, r.text
        assert dav.get("/dav/a-copy.bin").content == _data(10 * KiB, 20)
        r = dav.request("COPY", "/dav/a-copy.bin", headers={"Destination": "/dav/Pics/b.bin"})
        assert r.status_code == 403, r.text
    assert viewer.get("/a-copy.bin") == _data(10 * KiB, 20)
    assert "/Pics/b.bin" not in owner.paths()
