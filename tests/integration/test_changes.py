"""The change journal over HTTP: /changes, /changes/wait and /server, against a real API with
a real storage node. One server for the module (each test has its own accounts); settings
are shrunk so retention, page caps and long-poll caps show within a second or two."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from minidropbox.metadata import server_info
from minidropbox.metadata.db import Database
from tests.conftest import bearer, signup_and_login
from tests.harness import ServerProcess, TestCluster

RETENTION = 40
PAGE_CAP = 25
LONGPOLL_CAP = 1.5


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    c = TestCluster(tmp_path_factory.mktemp("changes"), nodes=1, replicas=1, env={
        "journal_retention": RETENTION, "journal_trim_interval": 0.2,
        "max_page_size": PAGE_CAP, "longpoll_max_timeout": LONGPOLL_CAP,
        # One account holds many long-polls here on purpose (the default cap is 20).
        "longpolls_per_user": 1000})
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def http(cluster: TestCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cluster.url, timeout=30) as client:
        yield client


def new_user(http: httpx.Client) -> dict[str, str]:
    return bearer(signup_and_login(http, "u" + uuid.uuid4().hex[:12]))


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def latest(http: httpx.Client, auth: dict[str, str]) -> str:
    body = ok(http.get("/api/v1/changes", headers=auth))
    assert body["entries"] == [] and body["has_more"] is False
    return str(body["cursor"])


def since(http: httpx.Client, auth: dict[str, str], cursor: str, **params: Any) -> Any:
    return ok(http.get("/api/v1/changes", headers=auth, params={"cursor": cursor, **params}))


def put(http: httpx.Client, auth: dict[str, str], path: str, data: bytes) -> Any:
    return ok(http.put("/api/v1/files/content", headers=auth, params={"path": path},
                       content=data), 201)


def empty_commit(path: str) -> dict[str, Any]:
    return {"path": path, "size": 0, "chunks": [], "parent_version": None}


def assert_reset(response: httpx.Response) -> str:
    assert response.status_code == 410, response.text
    error = response.json()["error"]
    assert error["code"] == "reset"
    return str(error["message"])


def test_every_change_appends_exactly_one_entry(http: httpx.Client) -> None:
    auth = new_user(http)
    cursor = latest(http, auth)

    def expect(*changes: tuple[Any, ...]) -> list[dict[str, Any]]:
        nonlocal cursor
        page = since(http, auth, cursor)
        got = [(e["op"], e["path"], e["from_path"], e["type"], e["version"])
               for e in page["entries"]]
        assert got == list(changes)
        assert page["has_more"] is False
        if page["entries"]:
            assert page["cursor"] == page["entries"][-1]["cursor"]
        cursor = page["cursor"]
        return list(page["entries"])

    ok(http.post("/api/v1/files/folder", headers=auth, json={"path": "/A"}), 201)
    expect(("mkdir", "/A", None, "folder", None))
    v1 = put(http, auth, "/A/f.txt", b"first")
    [entry] = expect(("commit", "/A/f.txt", None, "file", 1))
    assert (entry["size"], entry["content_hash"]) == (5, v1["content_hash"])
    assert entry["time"] == pytest.approx(time.time(), abs=60)
    put(http, auth, "/A/f.txt", b"first")  # the same bytes again: no new version
    expect()
    put(http, auth, "/A/f.txt", b"second")
    expect(("commit", "/A/f.txt", None, "file", 2))
    ok(http.post("/api/v1/files/restore", headers=auth, json={"path": "/A/f.txt", "version": 1}),
       201)
    [entry] = expect(("restore", "/A/f.txt", None, "file", 3))
    assert entry["content_hash"] == v1["content_hash"]
    ok(http.post("/api/v1/files/move", headers=auth, json={"from": "/A/f.txt", "to": "/A/g.txt"}))
    expect(("move", "/A/g.txt", "/A/f.txt", "file", 3))
    # A folder moves as one entry: its contents move with it.
    ok(http.post("/api/v1/files/move", headers=auth, json={"from": "/A", "to": "/B"}))
    expect(("move", "/B", "/A", "folder", None))
    # Folders a commit creates are announced first, each as its own mkdir.
    ok(http.post("/api/v1/files/commit", headers=auth, json=empty_commit("/C/D/h.txt")), 201)
    expect(("mkdir", "/C", None, "folder", None), ("mkdir", "/C/D", None, "folder", None),
           ("commit", "/C/D/h.txt", None, "file", 1))
    # A folder delete is one entry; undeleting it announces the folder and then its contents.
    assert ok(http.delete("/api/v1/files", headers=auth, params={"path": "/B"}))["deleted"] == 2
    expect(("delete", "/B", None, "folder", None))
    ok(http.post("/api/v1/trash/restore", headers=auth, json={"path": "/B"}))
    expect(("undelete", "/B", None, "folder", None), ("undelete", "/B/g.txt", None, "file", 3))
    ok(http.delete("/api/v1/files", headers=auth, params={"path": "/C/D/h.txt"}))
    expect(("delete", "/C/D/h.txt", None, "file", 1))
    # A batch: one entry per commit that went through, none for the one refused.
    body = ok(http.post("/api/v1/files/commit_batch", headers=auth, json={"commits": [
        empty_commit("/C/x"), empty_commit("/C/y"),
        {**empty_commit("/C/x"), "parent_version": 7}]}))
    assert [r["ok"] for r in body["results"]] == [True, True, False]
    expect(("commit", "/C/x", None, "file", 1), ("commit", "/C/y", None, "file", 1))
    # Emptying the trash is not a change to the tree.
    ok(http.delete("/api/v1/trash", headers=auth))
    expect()


def test_cursors_resume_exactly_after_each_entry(http: httpx.Client) -> None:
    auth = new_user(http)
    start = latest(http, auth)
    for name in "abcdef":
        ok(http.post("/api/v1/files/folder", headers=auth, json={"path": f"/{name}"}), 201)
    entries = since(http, auth, start)["entries"]
    assert [e["path"] for e in entries] == [f"/{n}" for n in "abcdef"]
    assert len({e["cursor"] for e in entries}) == 6
    for i, entry in enumerate(entries):
        page = since(http, auth, entry["cursor"])
        assert page["entries"] == entries[i + 1:]
    # At the head: nothing new, and the same cursor back.
    head = latest(http, auth)
    assert head == entries[-1]["cursor"]
    assert since(http, auth, head) == {"entries": [], "cursor": head, "has_more": False}


def test_paging_with_has_more_and_the_page_cap(http: httpx.Client) -> None:
    auth = new_user(http)
    start = latest(http, auth)
    count = PAGE_CAP + 5
    body = ok(http.post("/api/v1/files/commit_batch", headers=auth, json={
        "commits": [empty_commit(f"/f{i:02d}") for i in range(count)]}))
    assert all(r["ok"] for r in body["results"])
    pages, cursor = [], start
    while True:
        page = since(http, auth, cursor, limit=7)
        pages.append(page)
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    assert [len(p["entries"]) for p in pages] == [7, 7, 7, 7, 2]
    assert [p["has_more"] for p in pages] == [True] * 4 + [False]
    paths = [e["path"] for p in pages for e in p["entries"]]
    assert paths == [f"/f{i:02d}" for i in range(count)]
    # Asking for more than the server's page size gets the page size.
    capped = since(http, auth, start, limit=1000)
    assert len(capped["entries"]) == PAGE_CAP and capped["has_more"] is True
    assert ok(http.get("/api/v1/changes", headers=auth, params={"cursor": start, "limit": 0}),
              422)


def test_cursors_not_issued_for_this_account_get_410(http: httpx.Client) -> None:
    alice, bob = new_user(http), new_user(http)
    ok(http.post("/api/v1/files/folder", headers=alice, json={"path": "/x"}), 201)
    alice_cursor = latest(http, alice)
    generation, seq, mac = alice_cursor.split(".")
    # Bob's journal also has a position 1, but Alice's cursor is not his.
    ok(http.post("/api/v1/files/folder", headers=bob, json={"path": "/y"}), 201)
    assert_reset(http.get("/api/v1/changes", headers=bob, params={"cursor": alice_cursor}))
    assert_reset(http.get("/api/v1/changes/wait", headers=bob,
                          params={"cursor": alice_cursor, "timeout": 0}))
    for forged in (f"{generation}.0.{mac}", f"{generation}.{seq}.{mac[:-2]}AA", "1", "x.y.z",
                   alice_cursor + "0"):
        assert_reset(http.get("/api/v1/changes", headers=alice, params={"cursor": forged}))
    assert http.get("/api/v1/changes", params={"cursor": alice_cursor}).status_code == 401


def test_cursors_older_than_the_retained_history_get_410(http: httpx.Client) -> None:
    auth = new_user(http)

    def batch(prefix: str, count: int) -> None:
        body = ok(http.post("/api/v1/files/commit_batch", headers=auth, json={
            "commits": [empty_commit(f"/{prefix}{i:02d}") for i in range(count)]}))
        assert all(r["ok"] for r in body["results"])

    ok(http.post("/api/v1/files/folder", headers=auth, json={"path": "/first"}), 201)
    first = latest(http, auth)  # position 1
    batch("a", 20)
    middle = latest(http, auth)  # position 21
    batch("b", 25)  # head 46: only 7..46 are kept
    deadline = time.monotonic() + 10
    while True:  # trimming runs in the background every 0.2 s
        response = http.get("/api/v1/changes", headers=auth, params={"cursor": first})
        if response.status_code == 410 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert "older than the history" in assert_reset(response)
    # A cursor inside the retained window still resumes, with nothing missing.
    page = since(http, auth, middle)
    assert [e["path"] for e in page["entries"]] == [f"/b{i:02d}" for i in range(25)]
    assert page["has_more"] is False


def _timed_wait(http: httpx.Client, auth: dict[str, str], cursor: str,
                timeout: float) -> tuple[dict[str, Any], float]:
    response = http.get("/api/v1/changes/wait", headers=auth,
                        params={"cursor": cursor, "timeout": timeout})
    return ok(response), time.monotonic()


def test_long_poll_answers_within_100_ms_of_a_change(http: httpx.Client,
                                                     cluster: TestCluster) -> None:
    auth = new_user(http)
    lags = []
    with httpx.Client(base_url=cluster.url, timeout=30) as other:
        for i in range(5):
            cursor = latest(http, auth)
            result: dict[str, Any] = {}

            def poll(cursor: str = cursor, result: dict[str, Any] = result) -> None:
                result["body"], result["at"] = _timed_wait(other, auth, cursor, LONGPOLL_CAP)

            waiter = threading.Thread(target=poll)
            waiter.start()
            time.sleep(0.3)  # the poll is parked on the server by now
            ok(http.post("/api/v1/files/folder", headers=auth, json={"path": f"/w{i}"}), 201)
            changed_at = time.monotonic()
            waiter.join(5)
            assert result["body"] == {"changes": True, "cursor": latest(http, auth)}
            lags.append(result["at"] - changed_at)
    print(f"long-poll lag after a change: median {statistics.median(lags) * 1000:.1f} ms, "
          f"max {max(lags) * 1000:.1f} ms")
    assert statistics.median(lags) < 0.1 and max(lags) < 0.5
    # A cursor that is already behind answers at once.
    behind = since(http, auth, latest(http, auth))["cursor"]
    ok(http.post("/api/v1/files/folder", headers=auth, json={"path": "/now"}), 201)
    started = time.monotonic()
    body, done = _timed_wait(http, auth, behind, LONGPOLL_CAP)
    assert body["changes"] is True and done - started < 0.5


def test_long_poll_times_out_and_the_timeout_is_capped(http: httpx.Client) -> None:
    auth = new_user(http)
    cursor = latest(http, auth)
    started = time.monotonic()
    body, done = _timed_wait(http, auth, cursor, 0.5)
    assert body == {"changes": False, "cursor": cursor}
    assert 0.45 <= done - started < 1.2
    started = time.monotonic()
    body, done = _timed_wait(http, auth, cursor, 3600)
    assert body == {"changes": False, "cursor": cursor}
    assert LONGPOLL_CAP - 0.05 <= done - started < LONGPOLL_CAP + 1.0
    bad = http.get("/api/v1/changes/wait", headers=auth, params={"cursor": cursor,
                                                                  "timeout": -1})
    assert bad.status_code == 422


def test_waiting_long_polls_hold_no_threads_or_connections(cluster: TestCluster,
                                                           http: httpx.Client) -> None:
    """More parked long-polls than worker threads (40) and database connections (32)."""
    auth = new_user(http)
    waiters = 60

    async def list_and_mkdir(client: httpx.AsyncClient, folder: str) -> float:
        started = time.monotonic()
        listing = await client.get("/api/v1/files/list", headers=auth)
        assert listing.status_code == 200, listing.text
        created = await client.post("/api/v1/files/folder", headers=auth, json={"path": folder})
        assert created.status_code == 201, created.text
        return time.monotonic() - started

    async def scenario() -> tuple[list[dict[str, Any]], float, float]:
        limits = httpx.Limits(max_connections=waiters + 5)
        async with httpx.AsyncClient(base_url=cluster.url, timeout=30, limits=limits) as client:
            # The same two requests with nothing parked: what they cost on this machine now.
            alone = sorted([await list_and_mkdir(client, f"/alone-{i}") for i in range(3)])[1]
            wake_cursor = latest(http, auth)
            polls = [asyncio.create_task(client.get(
                "/api/v1/changes/wait", headers=auth,
                params={"cursor": wake_cursor, "timeout": LONGPOLL_CAP}))
                for _ in range(waiters)]
            await asyncio.sleep(0.3)
            # Other requests (which need a thread and a connection) still go straight through.
            busy_for = await list_and_mkdir(client, "/wake")
            answers = await asyncio.gather(*polls)
            return [ok(a) for a in answers], busy_for, alone

    answers, busy_for, alone = asyncio.run(scenario())
    print(f"with {waiters} long-polls parked, a listing and a mkdir took {busy_for * 1000:.0f} ms"
          f" ({alone * 1000:.0f} ms with none)")
    # Queued behind the long-polls they would wait for the polls' timeout; a ratio to the same
    # requests alone (not a time) keeps this true on a busy machine.
    assert busy_for < max(0.8, 5 * alone), \
        f"other requests waited {busy_for:.2f} s behind the long-polls ({alone:.2f} s alone)"
    assert all(a == {"changes": True, "cursor": latest(http, auth)} for a in answers)


def test_server_describes_itself_without_internal_urls(http: httpx.Client) -> None:
    body = ok(http.get("/api/v1/server"))  # no token needed
    assert body["generation"] and int(body["generation"], 16) >= 0
    assert body["replicas"] == 1 and body["api"] == "v1" and body["version"]
    assert body["max_page_size"] == PAGE_CAP and body["journal_retention"] == RETENTION
    assert not [v for v in body.values() if isinstance(v, str) and "://" in v]
    auth = new_user(http)
    assert latest(http, auth).startswith(body["generation"] + ".")


def test_a_new_generation_resets_every_cursor(api_server: ServerProcess,
                                              tmp_path: Path) -> None:
    """What a restore from a backup does: new generation, so old cursors get 410.

    The server is stopped with a long-poll parked on it, which must answer at once rather
    than hold the shutdown."""
    with httpx.Client(base_url=api_server.url, timeout=30) as client:
        auth = new_user(client)
        ok(client.post("/api/v1/files/folder", headers=auth, json={"path": "/kept"}), 201)
        before = latest(client, auth)
        generation = ok(client.get("/api/v1/server"))["generation"]
        parked: dict[str, Any] = {}
        poller = threading.Thread(target=lambda: parked.update(
            answer=_timed_wait(client, auth, before, 60)[0]))
        poller.start()
        time.sleep(0.5)
        stopping = time.monotonic()
        api_server.stop()
        stopped_in = time.monotonic() - stopping
        poller.join(5)
    assert parked["answer"] == {"changes": False, "cursor": before}
    assert stopped_in < 2.0
    url = api_server.env.get("MINIDROPBOX_DATABASE_URL") or (
        f"sqlite:///{tmp_path / 'api-data' / 'metadata.db'}")
    db = Database(url)
    try:
        with db.write() as conn:
            assert server_info.generation(conn) == generation
            renewed = server_info.new_generation(conn)
    finally:
        db.dispose()
    api_server.start()
    with httpx.Client(base_url=api_server.url, timeout=30) as client:
        assert ok(client.get("/api/v1/server"))["generation"] == renewed != generation
        message = assert_reset(client.get("/api/v1/changes", headers=auth,
                                          params={"cursor": before}))
        assert "restored" in message
        # Starting again from the new latest cursor works; the data itself is untouched.
        fresh = latest(client, auth)
        assert fresh.startswith(renewed + ".") and since(client, auth, fresh)["entries"] == []
