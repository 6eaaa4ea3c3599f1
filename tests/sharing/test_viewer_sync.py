"""A viewer's running sync: an edit in a read-only shared folder is refused by the server,
reported once (the log and ``minidropbox status``), kept on disk and not retried until it
changes again, while everything else keeps syncing. Real processes against a real cluster."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.e2e.sync_harness import SyncClient, signup, wait_until
from tests.harness import TestCluster
from tests.sharing.test_shared_sync import _login, _share

REFUSED = "/Read/only.txt: not uploaded"


def _status(client: SyncClient) -> list[str]:
    syncs = json.loads(client.cli("--json", "status").stdout)
    return [line for s in syncs if s.get("running") for line in s.get("skipped") or []]


def _state(client: SyncClient) -> str:
    syncs = json.loads(client.cli("--json", "status").stdout)
    return str(next(s.get("state") for s in syncs if s.get("running")))


def test_a_refused_edit_is_reported_once_kept_and_retried_only_when_changed(
        share_cluster: TestCluster, tmp_path: Path) -> None:
    url = share_cluster.url
    alice, carol = signup(url), signup(url)
    with _login(url, alice) as http:
        for name in ("only.txt", "gone.txt"):
            r = http.put("/api/v1/files/content", params={"path": f"/Read/{name}"},
                         content=f"alice's {name}".encode())
            assert r.status_code == 201, r.text
    _share(url, alice, "/Read", carol, "viewer", "/Read")
    c = SyncClient(url, tmp_path, "carol-laptop", carol)
    try:
        c.start()
        wait_until(lambda: c.tree().get("/Read/only.txt") == b"alice's only.txt", timeout=60,
                   message="the shared file at Carol's")
        time.sleep(0.5)  # older than the settling time: the next scan reads the edit
        c.write("/Read/only.txt", b"carol's local edit")
        wait_until(lambda: REFUSED in c.log(), timeout=60, message="the refusal reported")
        wait_until(lambda: any(line.startswith(REFUSED) for line in _status(c)), timeout=30,
                   message="the refusal in `minidropbox status`")
        assert "read-only" in c.log()
        wait_until(lambda: _state(c) == "idle", timeout=30, message="idle after the refusal")

        # Sync goes on: her own files go up, Alice's changes come down, each a new round.
        for i in range(3):
            c.write(f"/mine-{i}.txt", b"carol's own file %d" % i)
            with _login(url, carol) as http:
                wait_until(lambda i=i: http.get("/api/v1/files/content", params={
                    "path": f"/mine-{i}.txt"}).status_code == 200, timeout=60,
                    message=f"carol's file {i} uploaded")
        with _login(url, alice) as http:
            r = http.put("/api/v1/files/content", params={"path": "/Read/later.txt"},
                         content=b"alice, later")
            assert r.status_code == 201, r.text
        wait_until(lambda: c.tree().get("/Read/later.txt") == b"alice, later", timeout=60,
                   message="alice's later file at Carol's")
        log = c.log()
        assert log.count(REFUSED) == 1, log  # once, not every round
        assert "failed" not in log and "retrying" not in log, log  # held, not retried
        assert c.tree()["/Read/only.txt"] == b"carol's local edit"  # kept

        # A viewer deleting a file gets it back, with one line saying why.
        (c.root / "Read" / "gone.txt").unlink()
        wait_until(lambda: c.tree().get("/Read/gone.txt") == b"alice's gone.txt", timeout=60,
                   message="the deleted read-only file restored")
        assert "restoring /Read/gone.txt" in c.log()

        # A new edit of the same file is a new change: tried, refused, reported again.
        time.sleep(0.5)
        c.write("/Read/only.txt", b"carol's second edit")
        wait_until(lambda: c.log().count(REFUSED) == 2, timeout=60,
                   message="the second edit refused and reported")
        assert c.tree()["/Read/only.txt"] == b"carol's second edit"
        with _login(url, alice) as http:
            r = http.get("/api/v1/files/content", params={"path": "/Read/only.txt"})
            assert r.content == b"alice's only.txt"
            names = [e["name"] for e in http.get("/api/v1/files/list",
                                                 params={"path": "/Read"}).json()["entries"]]
            assert sorted(names) == ["gone.txt", "later.txt", "only.txt"]
    finally:
        c.stop()
        print(f"--- sync log of {c.device} ---\n{c.log()}")
