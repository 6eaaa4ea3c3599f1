"""The quota holds when one user's uploads race each other (SQLite, one API process).

The same race through two API replicas on PostgreSQL is in ``test_postgres_replicas``.
"""

from __future__ import annotations

from pathlib import Path

from tests.deploy.test_postgres_replicas import QUOTA, upload_race
from tests.harness import TestCluster


def test_concurrent_uploads_never_overrun_the_quota(tmp_path: Path) -> None:
    cluster = TestCluster(tmp_path, nodes=2, replicas=2, env={"quota_bytes": QUOTA})
    try:
        upload_race([cluster.url], "quota-race")
    finally:
        cluster.stop()
