"""A shared folder's bytes count against its owner's quota: a member's commit is charged to
the owner in the commit's own transaction — refused whole when the owner has no room (even
when the member has plenty), and never charged for a commit that fails."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import bearer, signup_and_login
from tests.harness import TestCluster
from tests.sharing.conftest import Person

KiB = 1024
QUOTA = 100 * KiB  # files this small are one chunk each


@pytest.fixture(scope="module")
def quota_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    with TestCluster(tmp_path_factory.mktemp("owner-pays"), nodes=1, replicas=1,
                     env={"quota_bytes": QUOTA}) as c:
        yield c


def _person(cluster: TestCluster, name: str) -> Person:
    with httpx.Client(base_url=cluster.url, timeout=60) as anon:
        tokens = signup_and_login(anon, name)
    return Person(name, httpx.Client(base_url=cluster.url, timeout=60, headers=bearer(tokens)))


def _put(who: Person, path: str, size: int, seed: int, status: int,
         **headers: str) -> Any:
    data = random.Random(seed).randbytes(size)
    r = who.http.put("/api/v1/files/content", params={"path": path}, content=data,
                     headers=headers)
    assert r.status_code == status, r.text
    return r.json()


def test_members_commits_are_charged_to_the_owner(quota_cluster: TestCluster) -> None:
    owner, editor = _person(quota_cluster, "owner-pays"), _person(quota_cluster, "editor-uses")
    try:
        _put(owner, "/Shared/own.bin", 60 * KiB, 1, 201)  # owner: 60 of 100 KiB
        owner.share("/Shared", editor)

        _put(editor, "/Shared/e1.bin", 30 * KiB, 2, 201)  # owner: 90 KiB
        # The editor has 70 KiB left of their own, the owner 10: refused, nothing committed.
        refused = _put(editor, "/Shared/e2.bin", 20 * KiB, 3, 507)
        assert refused["error"]["code"] == "quota_exceeded"
        assert "/Shared/e2.bin" not in owner.paths()
        # A commit that fails for another reason charges nothing either.
        _put(editor, "/Shared/e1.bin", 5 * KiB, 4, 409, **{"If-Match": "7"})
        # So the owner has exactly 10 KiB left: 11 do not fit, 9 do.
        _put(owner, "/mine-11.bin", 11 * KiB, 5, 507)
        _put(owner, "/mine-9.bin", 9 * KiB, 6, 201)
        # The editor still uploads into their own tree, against their own quota.
        _put(editor, "/own.bin", 20 * KiB, 7, 201)
    finally:
        owner.http.close()
        editor.http.close()
