"""Two API replicas on two ports sharing one PostgreSQL database and the same storage nodes.

Runs when ``MINIDROPBOX_TEST_POSTGRES_URL`` names a reachable server (``.ci/run`` sets it).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
from websockets.sync.client import connect as ws_connect

from tests.conftest import PASSWORD, bearer, signup_and_login
from tests.deploy.test_metrics import scrape, value
from tests.harness import (
    ServerProcess,
    TestCluster,
    new_postgres_database,
    postgres_url,
    start_api_replica,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(postgres_url() is None, reason="MINIDROPBOX_TEST_POSTGRES_URL not set"),
]
CLUSTER_JOBS = ("repair", "replica-audit", "gc")
WRITERS = 50
QUOTA = 4 * 1024 * 1024


class Replicas:
    """A cluster whose API runs as two replicas, ``a`` and ``b``."""

    def __init__(self, tmp: Path, nodes: int, replicas: int, **env: Any) -> None:
        base = postgres_url()
        assert base is not None
        self.cluster = TestCluster(tmp, nodes=nodes, replicas=replicas, env={
            "database_url": new_postgres_database(base), "leader_interval": 0.5, **env})
        self.a = self.cluster.api
        self.b: ServerProcess | None = None
        try:
            self.b = start_api_replica(self.a, "api-2")
        except BaseException:
            self.cluster.stop()
            raise

    @property
    def both(self) -> list[ServerProcess]:
        assert self.b is not None
        return [self.a, self.b]

    def stop(self) -> None:
        if self.b is not None:
            self.b.stop()
        self.cluster.stop()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    r = Replicas(tmp_path_factory.mktemp("replicas"), nodes=2, replicas=2, quota_bytes=QUOTA)
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def tokens(pair: Replicas) -> dict[str, str]:
    with httpx.Client(base_url=pair.a.url, timeout=30) as c:
        return signup_and_login(c, "replicated")


def changes_since(url: str, auth: dict[str, str], cursor: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, timeout=30) as c:
        while True:
            page = c.get("/api/v1/changes", params={"cursor": cursor}, headers=auth).json()
            entries += page["entries"]
            cursor = page["cursor"]
            if not page["has_more"]:
                return entries


def latest_cursor(url: str, auth: dict[str, str]) -> str:
    cursor: str = httpx.get(url + "/api/v1/changes", headers=auth).json()["cursor"]
    return cursor


def test_a_session_from_one_replica_works_on_the_other(pair: Replicas,
                                                       tokens: dict[str, str]) -> None:
    assert pair.b is not None
    r = httpx.get(pair.b.url + "/api/v1/auth/me", headers=bearer(tokens))
    assert r.status_code == 200 and r.json()["username"] == "replicated"


def test_websocket_on_b_hears_a_commit_on_a_within_2s(pair: Replicas,
                                                      tokens: dict[str, str]) -> None:
    assert pair.b is not None
    auth = bearer(tokens)
    ws_url = pair.b.url.replace("http://", "ws://") + "/api/v1/notifications"
    with ws_connect(ws_url, subprotocols=["bearer", tokens["access_token"]]) as ws:
        first = json.loads(ws.recv(timeout=10))["cursor"]
        r = httpx.put(pair.a.url + "/api/v1/files/content", params={"path": "/from-a.txt"},
                      content=b"written through replica a", headers=auth, timeout=30)
        assert r.status_code == 201, r.text
        pushed = json.loads(ws.recv(timeout=2))  # at most 2 s after the commit answered
    assert pushed["cursor"] != first
    # And B's next page shows the change itself.
    seen = changes_since(pair.b.url, auth, first)
    assert [(e["op"], e["path"]) for e in seen] == [("commit", "/from-a.txt")]


def cut_connections(database_url: str, query_prefix: str) -> int:
    """Terminate the server sessions whose last statement starts with ``query_prefix`` (as a
    network cut or a PostgreSQL restart would look to them); returns how many."""
    engine = sqlalchemy.create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return len(conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND query LIKE %(prefix)s", {"prefix": query_prefix + "%"}).all())
    finally:
        engine.dispose()


def test_notifications_survive_lost_connections(pair: Replicas,
                                                tokens: dict[str, str]) -> None:
    assert pair.b is not None
    auth = bearer(tokens)
    db_url = pair.a.env["MINIDROPBOX_DATABASE_URL"]
    ws_url = pair.b.url.replace("http://", "ws://") + "/api/v1/notifications"
    with ws_connect(ws_url, subprotocols=["bearer", tokens["access_token"]]) as ws:
        cursors = [json.loads(ws.recv(timeout=10))["cursor"]]
        # 1. Every LISTEN is cut, and the change commits while b hears nothing: b catches up
        # from the journal once it is listening again.
        # 2. a's NOTIFY connection is cut: a sends again on a new one.
        for prefix, path in (("LISTEN ", "/unheard.txt"), ("SELECT pg_notify", "/resent.txt")):
            assert cut_connections(db_url, prefix) >= 1
            r = httpx.put(pair.a.url + "/api/v1/files/content", params={"path": path},
                          content=path.encode(), headers=auth, timeout=30)
            assert r.status_code == 201, r.text
            cursors.append(json.loads(ws.recv(timeout=5))["cursor"])
    assert len(set(cursors)) == 3
    seen = changes_since(pair.b.url, auth, cursors[0])
    assert [(e["op"], e["path"]) for e in seen] == [("commit", "/unheard.txt"),
                                                    ("commit", "/resent.txt")]


def test_long_poll_on_b_wakes_for_a_commit_on_a(pair: Replicas,
                                               tokens: dict[str, str]) -> None:
    assert pair.b is not None
    auth = bearer(tokens)
    b_url = pair.b.url
    cursor = latest_cursor(b_url, auth)
    answer: dict[str, Any] = {}

    def wait() -> None:
        r = httpx.get(b_url + "/api/v1/changes/wait", headers=auth, timeout=40,
                      params={"cursor": cursor, "timeout": 30})
        answer.update(r.json(), at=time.monotonic())

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.5)  # let the long-poll park
    committed = time.monotonic()
    assert httpx.put(pair.a.url + "/api/v1/files/content", params={"path": "/poll.txt"},
                     content=b"wake up", headers=auth, timeout=30).status_code == 201
    waiter.join(timeout=35)
    assert answer["changes"] is True
    assert answer["at"] - committed < 2


def run_together(jobs: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Start every job at the same moment (a barrier), each in its own thread."""
    barrier = threading.Barrier(len(jobs))

    def go(job: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait(timeout=30)
        return job()

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(go, jobs))


def test_concurrent_commits_through_both_replicas(pair: Replicas,
                                                  tokens: dict[str, str]) -> None:
    auth = bearer(tokens)
    path = "/contended.txt"
    start = latest_cursor(pair.a.url, auth)
    clients = [httpx.Client(base_url=api.url, timeout=60, headers=auth) for api in pair.both]
    try:
        # 1. Fifty writers, no parent given (plain PUT): every one is a new version.
        def put(i: int) -> Callable[[], httpx.Response]:
            return lambda: clients[i % 2].put("/api/v1/files/content", params={"path": path},
                                              content=f"writer {i}".encode())

        results = run_together([put(i) for i in range(WRITERS)])
        assert all(r.status_code == 201 for r in results), [r.text for r in results]
        numbers = sorted(r.json()["version"] for r in results)
        assert numbers == list(range(1, WRITERS + 1))
        by_number = {r.json()["version"]: r.json()["content_hash"] for r in results}

        # 2. Fifty writers who all read the head first: If-Match decides. Whoever wins gets
        # the next number; every loser a 409 naming the version that beat it.
        def guarded(i: int) -> Callable[[], httpx.Response]:
            def job() -> httpx.Response:
                c = clients[i % 2]
                seen = c.get("/api/v1/files/metadata", params={"path": path}).json()["version"]
                return c.put("/api/v1/files/content", params={"path": path},
                             content=f"guarded writer {i}".encode(),
                             headers={"If-Match": str(seen)})
            return job

        results = run_together([guarded(i) for i in range(WRITERS)])
        accepted = sorted(r.json()["version"] for r in results if r.status_code == 201)
        rejected = [r for r in results if r.status_code != 201]
        assert all(r.status_code == 409 for r in rejected), [r.text for r in rejected]
        assert all(r.json()["error"]["code"] == "version_conflict" for r in rejected)
        assert accepted == list(range(WRITERS + 1, WRITERS + 1 + len(accepted)))
        by_number.update({r.json()["version"]: r.json()["content_hash"]
                          for r in results if r.status_code == 201})
        total = WRITERS + len(accepted)

        history = clients[1].get("/api/v1/files/versions", params={"path": path}).json()
        assert sorted(v["version"] for v in history["versions"]) == list(range(1, total + 1))
        assert {v["version"]: v["content_hash"] for v in history["versions"]} == by_number
    finally:
        for c in clients:
            c.close()

    # The journal holds every accepted commit exactly once, in version order, read from
    # either replica.
    for api in pair.both:
        commits = [e for e in changes_since(api.url, auth, start) if e["path"] == path]
        assert [e["version"] for e in commits] == list(range(1, total + 1))
        assert len({e["cursor"] for e in commits}) == total


def upload_race(urls: list[str], username: str) -> None:
    """Twelve 512 KiB chunks uploaded at once (spread over ``urls``) with a 4 MiB quota:
    exactly eight are stored, however the uploads interleave; the rest get 507."""
    with httpx.Client(base_url=urls[0], timeout=30) as c:
        auth = bearer(signup_and_login(c, username))
    size = 512 * 1024
    blobs = [os.urandom(size) for _ in range(12)]
    clients = [httpx.Client(base_url=url, timeout=60, headers=auth) for url in urls]
    try:
        def upload(i: int) -> Callable[[], httpx.Response]:
            digest = hashlib.sha256(blobs[i]).hexdigest()
            return lambda: clients[i % len(clients)].put(f"/api/v1/chunks/{digest}",
                                                         content=blobs[i])

        results = run_together([upload(i) for i in range(len(blobs))])
    finally:
        for c in clients:
            c.close()
    stored = [r for r in results if r.status_code == 201]
    refused = [r for r in results if r.status_code != 201]
    assert all(r.status_code == 507 for r in refused), [r.text for r in refused]
    # Admitted side by side, the last free bytes still go to one upload only.
    assert len(stored) == QUOTA // size


def test_concurrent_uploads_never_overrun_the_quota(pair: Replicas) -> None:
    upload_race([api.url for api in pair.both], "quota-race")


def leaders(apis: list[ServerProcess]) -> list[str]:
    """Names of the replicas that report leading and running every cluster-wide job."""
    out = []
    for api in apis:
        samples = scrape(api.url, {})
        if value(samples, "minidropbox_cluster_leader") == 1:
            assert all(value(samples, "minidropbox_background_job_running", job=job) == 1
                       for job in CLUSTER_JOBS), api.name
            out.append(api.name)
        else:
            assert all(value(samples, "minidropbox_background_job_running", job=job) == 0
                       for job in CLUSTER_JOBS), api.name
        # Per-replica work runs everywhere.
        assert value(samples, "minidropbox_background_job_running", job="node-health") == 1
    return out


def test_cluster_jobs_run_on_exactly_one_replica(tmp_path: Path) -> None:
    r = Replicas(tmp_path, nodes=1, replicas=1)
    try:
        deadline = time.monotonic() + 10
        while len(found := leaders(r.both)) != 1:
            assert time.monotonic() < deadline, found
            time.sleep(0.2)
        for _ in range(5):  # and it stays that way
            assert leaders(r.both) == found
            time.sleep(0.3)
        leader = next(api for api in r.both if api.name == found[0])
        other = next(api for api in r.both if api is not leader)
        never = scrape(other.url, {})
        assert all(value(never, "minidropbox_background_job_starts_total", job=job) == 0
                   for job in CLUSTER_JOBS)

        # The leader dies without a word: the other takes the jobs over.
        leader.kill()
        deadline = time.monotonic() + 15
        while leaders([other]) != [other.name]:
            assert time.monotonic() < deadline, "no replica took over the cluster jobs"
            time.sleep(0.2)
    finally:
        r.stop()


LOCKINFO = (b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
            b"</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>")


def test_webdav_locks_hold_across_replicas(pair: Replicas, tokens: dict[str, str]) -> None:
    assert pair.b is not None
    made = httpx.post(pair.a.url + "/api/v1/app-passwords", headers=bearer(tokens),
                      json={"name": "locks"}, timeout=30)
    assert made.status_code == 201, made.text
    auth = ("replicated", made.json()["password"])
    with httpx.Client(base_url=pair.a.url, auth=auth, timeout=30) as a, \
            httpx.Client(base_url=pair.b.url, auth=auth, timeout=30) as b:
        assert a.put("/dav/locked.txt", content=b"one").status_code == 201
        lock = a.request("LOCK", "/dav/locked.txt", content=LOCKINFO)
        assert lock.status_code == 200, lock.text
        token = lock.headers["lock-token"]
        # Replica B knows the lock A granted: no write and no second lock without it.
        assert b.put("/dav/locked.txt", content=b"two").status_code == 423
        assert b.request("LOCK", "/dav/locked.txt", content=LOCKINFO).status_code == 423
        assert b"locktoken" in b.request("PROPFIND", "/dav/locked.txt",
                                         headers={"Depth": "0"}).content
        assert b.put("/dav/locked.txt", content=b"two",
                     headers={"If": f"({token})"}).status_code == 204
        assert b.request("UNLOCK", "/dav/locked.txt",
                         headers={"Lock-Token": token}).status_code == 204
        assert a.put("/dav/locked.txt", content=b"three").status_code == 204

        # Two replicas asked for the same exclusive lock at once grant it once.
        for round_ in range(5):
            path = f"/dav/race-{round_}.txt"
            assert a.put(path, content=b"x").status_code == 201
            def lock_it(c: httpx.Client, path: str = path) -> int:
                return c.request("LOCK", path, content=LOCKINFO).status_code

            with ThreadPoolExecutor(4) as pool:
                answers = list(pool.map(lock_it, [a, b, a, b]))
            assert sorted(answers) == [200, 423, 423, 423], answers


def test_failed_logins_count_across_replicas(pair: Replicas) -> None:
    """Guesses spread over both replicas spend one budget (5 per username a minute): the
    sixth attempt is refused on either replica, the right password too, and WebDAV's app
    passwords share that budget."""
    assert pair.b is not None
    with httpx.Client(base_url=pair.a.url, timeout=30) as a, \
            httpx.Client(base_url=pair.b.url, timeout=30) as b:
        tokens = signup_and_login(a, "guessed")
        made = a.post("/api/v1/app-passwords", headers=bearer(tokens), json={"name": "dav"})
        assert made.status_code == 201, made.text
        for i in range(5):
            r = (a, b)[i % 2].post("/api/v1/auth/login",
                                   json={"username": "guessed", "password": f"wrong-{i}"})
            assert r.status_code == 401, r.text
        for c in (a, b):
            r = c.post("/api/v1/auth/login", json={"username": "guessed", "password": PASSWORD})
            assert r.status_code == 429 and int(r.headers["retry-after"]) > 0, r.text
            r = c.request("PROPFIND", "/dav/", headers={"Depth": "0"},
                          auth=("guessed", made.json()["password"]))
            assert r.status_code == 429, r.text
