"""The backup service started before the API has created the database (containers start in
any order) waits for a migrated database instead of failing its first snapshot, and creates
nothing in the meantime."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from minidropbox.metadata.db import Database, head_revision
from tests.harness import BIN, database_url_for


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout} s:\n{log.read_text(errors='replace')}")


def test_the_backup_service_waits_for_the_migrated_database(tmp_path: Path) -> None:
    data, repo, log_path = tmp_path / "api-data", tmp_path / "repo", tmp_path / "backup.log"
    data.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINIDROPBOX_")}
    env.update({"MINIDROPBOX_DATA_DIR": str(data), "MINIDROPBOX_CLUSTER_SECRET": "s3cret"})
    url = database_url_for(data)  # a fresh, empty PostgreSQL database when testing on one
    if url:
        env["MINIDROPBOX_DATABASE_URL"] = url
    with open(log_path, "wb") as log:
        service = subprocess.Popen([str(BIN), "server", "backup", "--repo", str(repo),
                                    "--every", "1h"], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    snapshots = repo / "snapshots"
    try:
        wait_for(lambda: "waiting for the API to migrate" in log_path.read_text(), 60,
                 "the service said it waits", log_path)
        time.sleep(1.5)  # more than one look at the database
        assert service.poll() is None
        assert not snapshots.exists() or not any(snapshots.glob("*/manifest.json"))
        assert not (data / "metadata.db").exists(), "waiting created an empty SQLite database"

        db = Database(url or f"sqlite:///{data / 'metadata.db'}")
        try:
            db.migrate()  # what the API does at its first start
        finally:
            db.dispose()
        wait_for(lambda: snapshots.exists() and any(snapshots.glob("*/manifest.json")), 60,
                 "a snapshot once the database was migrated", log_path)
    finally:
        service.send_signal(signal.SIGTERM)
        code = service.wait(30)
    text = log_path.read_text()
    assert code == 0, text
    assert "backup failed" not in text, text
    assert f"metadata database migrated to {head_revision()}" in text
