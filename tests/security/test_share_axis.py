"""The authorization matrix again, with A's folder shared: every attack of
``tests/security/routes.py`` made by an editor and a viewer of that folder (mounted in their
trees at the same path) and by a member A removed. Members get what ``editor=``/``viewer=``
say (writes by a viewer: 403 ``read_only``, and nothing changes); a removed member gets
exactly what an outsider gets: 404, none of A's data, nothing changed."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.harness import TestCluster
from tests.security.conftest import User, new_user
from tests.security.routes import MATRIX, Attack, Victim, make_victim, snapshot
from tests.security.test_authz_matrix import _leaks

ATTACKS = [(key, i, a) for key, entry in MATRIX.items() if isinstance(entry, tuple)
           for i, a in enumerate(entry)]


@pytest.fixture(scope="module")
def people(sec_cluster: TestCluster) -> Iterator[tuple[httpx.Client, dict[str, User]]]:
    with httpx.Client(base_url=sec_cluster.url, timeout=60) as c:
        yield c, {role: new_user(c, role) for role in ("owner", "editor", "viewer", "removed")}


def _mount(c: httpx.Client, owner: User, member: User, v: Victim, role: str) -> None:
    r = c.post("/api/v1/shares/folders", headers=owner.auth,
               json={"path": v.folder, "username": member.name, "role": role})
    assert r.status_code == 201, r.text
    invite = c.get("/api/v1/shares/invites", headers=member.auth).json()["invites"][-1]
    r = c.post(f"/api/v1/shares/invites/{invite['invite_id']}/accept", headers=member.auth,
               json={"as_path": v.folder})
    assert r.status_code == 201, r.text


def _shared_victim(c: httpx.Client, users: dict[str, User]) -> Victim:
    """A's objects in a folder shared with the editor and the viewer, and with the member
    A then removed."""
    owner = users["owner"]
    victim = make_victim(c, owner.name, owner.auth)
    for role in ("editor", "viewer", "removed"):
        _mount(c, owner, users[role], victim, "viewer" if role == "viewer" else "editor")
    r = c.delete("/api/v1/shares/folders/members", headers=owner.auth,
                 params={"path": victim.folder, "username": users["removed"].name})
    assert r.status_code == 204, r.text
    return victim


@pytest.fixture(scope="module")
def standing(people: tuple[httpx.Client, dict[str, User]]) -> Victim:
    """One shared victim for every plain read (one GET): none may change anything. Each
    test still proves its attack changed nothing, so a write that slipped through fails the
    test that made it. (Other attacks write, if only into the attacker's own tree at the
    victim's paths, which a later read would then find: they get a victim each.)"""
    return _shared_victim(*people)


def _changes_nothing(spec: Attack) -> bool:
    """Attacks made by ``routes._get`` send one GET and nothing else (others named GET may
    write first, such as one making B's own file at A's path)."""
    return spec.call.__qualname__.startswith("_get.")


@pytest.mark.parametrize(("key", "index", "spec"), ATTACKS,
                         ids=[f"{m} {p} #{i}" for (m, p), i, _ in ATTACKS])
def test_members_and_removed_members(people: tuple[httpx.Client, dict[str, User]],
                                     standing: Victim, key: tuple[str, str], index: int,
                                     spec: Attack) -> None:
    c, users = people
    owner = users["owner"]
    victim = standing if _changes_nothing(spec) else _shared_victim(c, users)

    # The removed member first, then the viewer, then the editor (whose writes change A's data).
    before = snapshot(c, owner.auth, victim)
    for role in ("removed", "viewer", "editor"):
        expected = getattr(spec, role, None)
        r = spec.call(c, users[role].auth, victim)
        label = f"{key} as {role}"
        if expected is None:
            assert r.status_code in spec.attacker, f"{label}: {r.status_code} {r.text}"
            assert not _leaks(r, victim.markers), f"{label} leaked A's data: {r.text[:300]}"
            if spec.attacker_check:
                spec.attacker_check(r, victim)
            assert snapshot(c, owner.auth, victim) == before, f"{label} changed A's data"
            continue
        assert r.status_code in expected, f"{label}: {r.status_code} {r.text}"
        if r.status_code == 403:
            if r.headers.get("content-type", "").startswith("application/json"):
                assert r.json()["error"]["code"] in ("read_only", "forbidden"), r.text
            assert snapshot(c, owner.auth, victim) == before, f"{label} changed A's data"
        elif role != "editor":
            before = snapshot(c, owner.auth, victim)  # a member's allowed call may change it
