"""Two sync clients on two folders against one real cluster: changes flow both ways, fast,
conflicts keep both sides, and an edit racing a delete survives."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.sync_harness import (
    ServerView,
    SyncClient,
    as_hashes,
    signup,
    temp_files,
    two_devices,
    wait_until,
)
from tests.harness import TestCluster

CONFLICT = "conflicted copy"


@pytest.fixture
def account(module_cluster: TestCluster) -> str:
    return signup(module_cluster.url)


@pytest.fixture
def pair(module_cluster: TestCluster, account: str, tmp_path: Path
         ) -> Iterator[tuple[SyncClient, SyncClient]]:
    with two_devices(module_cluster.url, tmp_path, account) as devices:
        yield devices


@pytest.fixture
def server(module_cluster: TestCluster, account: str) -> Iterator[ServerView]:
    view = ServerView(module_cluster.url, account)
    try:
        yield view
    finally:
        view.close()


def converged(*clients: SyncClient, server: ServerView | None = None) -> bool:
    trees = [c.tree() for c in clients]
    if any(t != trees[0] for t in trees[1:]):
        return False
    return server is None or server.tree() == as_hashes(trees[0])


def both_running(a: SyncClient, b: SyncClient) -> None:
    a.start()
    b.start()
    wait_until(lambda: "idle" in a.log() and "idle" in b.log(), message="both clients idle")


def test_changes_flow_both_ways(pair: tuple[SyncClient, SyncClient],
                                server: ServerView) -> None:
    a, b = pair
    both_running(a, b)
    # Create on A, including a new folder and an empty one.
    a.write("/notes.txt", b"first draft")
    a.write("/Docs/plan.md", b"# plan")
    (a.root / "Empty").mkdir()
    wait_until(lambda: b.tree() == a.tree(), message="A's new files on B")
    # Edit on B.
    b.write("/notes.txt", b"second draft, from B")
    wait_until(lambda: a.tree().get("/notes.txt") == b"second draft, from B",
               message="B's edit on A")
    # Rename on A, right after the download: a move on the server, so the file keeps its
    # history, though the new name is still settling when the old one is seen gone.
    (a.root / "notes.txt").rename(a.root / "renamed.txt")
    wait_until(lambda: "/renamed.txt" in b.tree() and "/notes.txt" not in b.tree(),
               message="A's rename on B")
    assert [v["version"] for v in server.versions("/renamed.txt")] == [2, 1]
    # Folder move on B, then delete on A.
    (b.root / "Docs").rename(b.root / "Archive")
    wait_until(lambda: a.tree().get("/Archive/plan.md") == b"# plan"
               and "/Docs" not in a.tree(), message="B's folder move on A")
    (a.root / "renamed.txt").unlink()
    wait_until(lambda: "/renamed.txt" not in b.tree(), message="A's delete on B")
    wait_until(lambda: converged(a, b, server=server), message="agreement")
    assert set(a.tree()) == {"/Archive", "/Archive/plan.md", "/Empty"}
    assert temp_files(a.root) == temp_files(b.root) == []


def test_change_on_a_reaches_b_in_under_two_seconds(pair: tuple[SyncClient, SyncClient]
                                                    ) -> None:
    a, b = pair
    both_running(a, b)
    latencies = []
    for i in range(20):
        data = f"change {i} {os.urandom(4).hex()}".encode()
        target = b.root / f"latency-{i % 3}.txt"

        def arrived(target: Path = target, data: bytes = data) -> bool:
            try:
                return target.read_bytes() == data
            except FileNotFoundError:
                return False

        start = time.monotonic()
        a.write(f"/latency-{i % 3}.txt", data)
        wait_until(arrived, timeout=15, interval=0.01, message=f"change {i} on B")
        latencies.append(time.monotonic() - start)
    median = statistics.median(latencies)
    print(f"sync latency A->B: median {median:.2f}s, max {max(latencies):.2f}s")
    assert median < 2.0, latencies


def test_simultaneous_edits_make_exactly_one_conflicted_copy(
        pair: tuple[SyncClient, SyncClient], server: ServerView) -> None:
    a, b = pair
    a.write("/report.txt", b"original")
    a.once()
    b.once()
    both_running(a, b)
    a.write("/report.txt", b"edited on the laptop")
    b.write("/report.txt", b"edited on the desktop")
    wait_until(lambda: converged(a, b, server=server) and len(a.tree()) == 2, timeout=30,
               message="one conflict resolved on both sides")
    tree = a.tree()
    copies = [p for p in tree if CONFLICT in p]
    assert len(copies) == 1, tree
    assert sorted(v for v in tree.values() if v) == [b"edited on the desktop",
                                                     b"edited on the laptop"]
    # The server's version kept the name; the copy is named after the device that lost.
    loser = "laptop" if tree["/report.txt"] == b"edited on the desktop" else "desktop"
    assert copies[0].startswith(f"/report ({CONFLICT}, {loser}, ")
    assert copies[0].endswith(").txt")


def test_edit_racing_delete_keeps_the_edit(pair: tuple[SyncClient, SyncClient],
                                           server: ServerView) -> None:
    a, b = pair
    for name in ("first", "second"):
        a.write(f"/{name}.txt", b"v1")
    a.once()
    b.once()
    # The delete reaches the server first: the edit brings the file back.
    (a.root / "first.txt").unlink()
    a.once()
    b.write("/first.txt", b"edited while deleted elsewhere")
    b.once()
    a.once()
    assert a.tree()["/first.txt"] == b"edited while deleted elsewhere"
    # The edit reaches the server first: the delete is not applied over it.
    b.write("/second.txt", b"edited before the delete arrived")
    b.once()
    (a.root / "second.txt").unlink()
    a.once()
    b.once()
    assert a.tree()["/second.txt"] == b"edited before the delete arrived"
    assert converged(a, b, server=server)
    # And both at once, while both run.
    both_running(a, b)
    (a.root / "first.txt").unlink()
    b.write("/first.txt", b"edited during the race")
    wait_until(lambda: converged(a, b, server=server)
               and a.tree().get("/first.txt") == b"edited during the race", timeout=30,
               message="the edit to survive the race")


def test_a_file_is_uploaded_only_once_it_holds_still(pair: tuple[SyncClient, SyncClient],
                                                     server: ServerView) -> None:
    a, _ = pair
    a.start()
    wait_until(lambda: "idle" in a.log(), message="A idle")
    with open(a.root / "growing.log", "wb") as fh:
        for _ in range(30):  # 3 s of writes (longer than the debounce), never 0.4 s apart
            fh.write(b"x" * 1000)
            fh.flush()
            time.sleep(0.1)
    wait_until(lambda: server.tree().get("/growing.log"), message="the finished file")
    assert [v["size"] for v in server.versions("/growing.log")] == [30000]
