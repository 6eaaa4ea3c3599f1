"""``--data`` means the folder given to ``server cluster --data`` for every operator command,
no operator command creates a metadata database it did not find, and a backup of an empty
database after snapshots with data is refused instead of becoming ``latest``."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from minidropbox.metadata.db import Database
from tests.conftest import bearer, signup_and_login
from tests.harness import TestCluster
from tests.integration.test_backup import backup_json, cli, upload


def test_data_means_the_cluster_folder_and_nothing_is_created(tmp_path: Path) -> None:
    install = tmp_path / "data"  # as `server cluster --data ./data` lays it out
    with TestCluster(tmp_path, env={"data_dir": install / "api"}) as cluster:
        with httpx.Client(base_url=cluster.url, timeout=60) as client:
            auth = bearer(signup_and_login(client, "alice"))
            upload(client, auth, "/report.txt", b"quarterly figures\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINIDROPBOX_")}
        env.update({"MINIDROPBOX_CLUSTER_SECRET": cluster.secret,
                    "MINIDROPBOX_NODES": ",".join(f"{n.name}={n.url}" for n in cluster.nodes)})
        if "MINIDROPBOX_DATABASE_URL" in cluster.api.env:  # the suite runs on PostgreSQL
            env["MINIDROPBOX_DATABASE_URL"] = cluster.api.env["MINIDROPBOX_DATABASE_URL"]

        granted = cli(env, "server", "grant-admin", "alice", "--data", str(install))
        assert granted.returncode == 0, granted.stderr
        assert "alice is now an administrator" in granted.stdout

        if "MINIDROPBOX_DATABASE_URL" not in env:
            wrong = tmp_path / "elsewhere"
            wrong.mkdir()
            missing = cli(env, "server", "grant-admin", "alice", "--data", str(wrong))
            assert missing.returncode == 4
            assert "No Mini-Dropbox metadata in" in missing.stderr
            assert list(wrong.iterdir()) == []  # no empty database left behind
            refused = cli(env, "backup", "now", "--repo", str(tmp_path / "r0"),
                          "--data", str(wrong))
            assert refused.returncode == 4 and not (tmp_path / "r0").exists()

        repo = str(tmp_path / "repo")
        first = backup_json(env, "now", "--repo", repo, "--data", str(install))
        assert first["contents"]["users"] == 1 and first["contents"]["files"] == 1
        listing = cli(env, "backup", "list", "--repo", repo)
        assert listing.returncode == 0
        header, row = listing.stdout.splitlines()[:2]
        assert header.split()[2:5] == ["USERS", "FILES", "SIZE"]
        assert row.split()[3:6] == ["1", "1", "18"]  # 18 bytes, in human units

    # The same installation, emptied (as a fresh database in the right place looks): refused.
    if "MINIDROPBOX_DATABASE_URL" in env:
        return
    (install / "api" / "metadata.db").rename(install / "api" / "old.db")
    for suffix in ("-wal", "-shm"):
        Path(f"{install}/api/metadata.db{suffix}").unlink(missing_ok=True)
    db = Database(f"sqlite:///{install / 'api' / 'metadata.db'}")
    db.migrate()  # what a server started on the wrong folder would have made
    db.dispose()
    # An empty database references no chunks: no node is asked for anything.
    empty = cli(env, "backup", "now", "--repo", repo, "--data", str(install))
    assert empty.returncode == 5, empty.stderr
    assert "holds no users and no files" in empty.stderr
    assert len(backup_json(env, "list", "--repo", repo)["snapshots"]) == 1
    forced = backup_json(env, "now", "--repo", repo, "--data", str(install), "--allow-empty")
    assert forced["contents"] == {"users": 0, "files": 0, "bytes": 0}
