"""Object-level authorization (OWASP API1): user B never reads, changes or learns about
user A's paths, versions, cursors or chunks, through any route. The routes and the attack on
each live in ``tests/security/routes.py``; a route without an entry there fails this suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from minidropbox.api.app import create_app
from minidropbox.settings import Settings
from tests.harness import TestCluster
from tests.security.conftest import User, new_user
from tests.security.routes import (
    ADMIN_PREFIXES,
    MATRIX,
    Admin,
    Attack,
    NoObject,
    make_victim,
    served_routes,
    snapshot,
)

ATTACKS = [(key, i, a) for key, entry in MATRIX.items() if isinstance(entry, tuple)
           for i, a in enumerate(entry)]
ADMINS = [(key, entry) for key, entry in MATRIX.items() if isinstance(entry, Admin)]


@pytest.fixture(scope="module")
def people(sec_cluster: TestCluster) -> Iterator[tuple[httpx.Client, User, User]]:
    with httpx.Client(base_url=sec_cluster.url, timeout=60) as c:
        yield c, new_user(c, "owner"), new_user(c, "intruder")


def test_every_route_has_a_matrix_entry(client: httpx.Client, tmp_path: Path) -> None:
    openapi = client.get("/openapi.json").json()
    app = create_app(Settings(data_dir=tmp_path))  # not started: only its route table
    served = served_routes(openapi, app)
    unregistered = sorted(served - MATRIX.keys())
    assert not unregistered, (
        "Routes without an entry in tests/security/routes.py MATRIX (say how another user "
        f"attacks them, or mark them no_object/admin): {unregistered}")
    stale = sorted(MATRIX.keys() - served)
    assert not stale, f"MATRIX entries for routes that no longer exist: {stale}"
    for (method, path), entry in MATRIX.items():
        if path.startswith(ADMIN_PREFIXES):
            assert isinstance(entry, Admin), f"{method} {path} is an admin route"
        if isinstance(entry, NoObject):
            assert entry.why, f"{method} {path}: say why it has no object"


def _leaks(r: httpx.Response, markers: list[bytes]) -> list[bytes]:
    seen = r.content + b"\n" + str(r.headers).encode()
    return [m for m in markers if m in seen]


@pytest.mark.parametrize(("key", "index", "spec"), ATTACKS,
                         ids=[f"{m} {p} #{i}" for (m, p), i, _ in ATTACKS])
def test_another_user_gets_nothing(people: tuple[httpx.Client, User, User],
                                   key: tuple[str, str], index: int, spec: Attack) -> None:
    c, owner, intruder = people
    victim = make_victim(c, owner.name, owner.auth)
    before = snapshot(c, owner.auth, victim)

    r = spec.call(c, intruder.auth, victim)
    assert r.status_code in spec.attacker, f"{key}: {r.status_code} {r.text}"
    assert r.status_code != 403, "403 would reveal that the object exists"
    assert not _leaks(r, victim.markers), f"{key} leaked A's data to B: {r.text[:300]}"
    if spec.attacker_check:
        spec.attacker_check(r, victim)
    assert snapshot(c, owner.auth, victim) == before, f"{key}: B's request changed A's data"

    # The same request by the owner works: the 404 above was about B, not a bad request.
    mine = (spec.owner_call or spec.call)(c, owner.auth, victim)
    assert mine.status_code in spec.owner, f"{key} (owner): {mine.status_code} {mine.text}"
    if spec.owner_check:
        spec.owner_check(mine, victim)


def test_leak_markers_are_detectable(people: tuple[httpx.Client, User, User]) -> None:
    """The owner's own listing and download carry the markers, so their absence above means
    something."""
    c, owner, _ = people
    victim = make_victim(c, owner.name, owner.auth)
    listing = c.get("/api/v1/files/list", headers=owner.auth,
                    params={"path": victim.folder, "cursor": victim.cursor})
    content = c.get("/api/v1/files/content", headers=owner.auth, params={"path": victim.file})
    versions = c.get("/api/v1/files/versions", headers=owner.auth, params={"path": victim.file})
    found = set(_leaks(listing, victim.markers) + _leaks(content, victim.markers)
                + _leaks(versions, victim.markers))
    assert found >= {victim.markers[0], victim.markers[1], victim.markers[2]}


@pytest.mark.parametrize(("key", "spec"), ADMINS, ids=[f"{m} {p}" for (m, p), _ in ADMINS])
def test_admin_routes_refuse_other_users(people: tuple[httpx.Client, User, User],
                                         key: tuple[str, str], spec: Admin) -> None:
    c, owner, intruder = people
    method, path = key
    if spec.call is not None:
        victim = make_victim(c, owner.name, owner.auth)
        r = spec.call(c, intruder.auth, victim)
    else:
        url = path.replace("{", "").replace("}", "")  # any value: the role is checked first
        kwargs = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
        r = c.request(method, url, headers=intruder.auth, **kwargs)  # type: ignore[arg-type]
    assert r.status_code == 403, f"{key}: {r.status_code} {r.text}"
    assert r.json()["error"]["code"] == "forbidden"
    r = c.request(method, path.replace("{", "").replace("}", ""))
    assert r.status_code == 401
