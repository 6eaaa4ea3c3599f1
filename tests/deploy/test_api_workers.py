"""``server api --workers N``: several API processes on one port over PostgreSQL, each client
woken once whichever worker committed; refused on SQLite."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import bearer, signup_and_login
from tests.harness import BIN, TestCluster, new_postgres_database, postgres_url

WAITERS = 8


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


@pytest.mark.postgres
@pytest.mark.skipif(postgres_url() is None, reason="MINIDROPBOX_TEST_POSTGRES_URL not set")
def test_workers_share_the_port_and_wake_every_waiter(tmp_path: Path) -> None:
    base = postgres_url()
    assert base is not None
    env = {"database_url": new_postgres_database(base), "api_workers": 3}
    with TestCluster(tmp_path, nodes=2, replicas=2, env=env) as cluster, \
            httpx.Client(base_url=cluster.url, timeout=60) as c:
        assert cluster.api.proc is not None
        workers = _children(cluster.api.proc.pid)
        assert len(workers) == 3, workers
        auth = bearer(signup_and_login(c, "alice"))
        cursor = c.get("/api/v1/changes", headers=auth).json()["cursor"]
        woken: list[float] = []
        ready = threading.Barrier(WAITERS + 1)

        def wait() -> None:
            # A connection of its own each: the kernel spreads them over the workers.
            with httpx.Client(base_url=cluster.url, timeout=90) as own:
                ready.wait()
                r = own.get("/api/v1/changes/wait", headers=auth,
                            params={"cursor": cursor, "timeout": 60})
                if r.status_code == 200 and r.json()["changes"]:
                    woken.append(time.monotonic())

        threads = [threading.Thread(target=wait) for _ in range(WAITERS)]
        for t in threads:
            t.start()
        ready.wait()
        time.sleep(1.0)  # the long-polls are parked
        data = b"seen by every worker"
        h = hashlib.sha256(data).hexdigest()
        assert c.put(f"/api/v1/chunks/{h}", headers=auth, content=data).status_code == 201
        committed = time.monotonic()
        assert c.post("/api/v1/files/commit", headers=auth, json={
            "path": "/a.txt", "size": len(data), "chunks": [h],
            "parent_version": None}).status_code == 201
        for t in threads:
            t.join(timeout=120)
        assert len(woken) == WAITERS
        assert max(woken) - committed < 30  # woken by the commit, not by the timeout


def test_workers_are_refused_on_sqlite(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINIDROPBOX_")}
    proc = subprocess.run([str(BIN), "server", "api", "--data", str(tmp_path),
                           "--workers", "2", "--port", "1"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 2, proc
    assert "PostgreSQL" in proc.stderr and "Traceback" not in proc.stderr
