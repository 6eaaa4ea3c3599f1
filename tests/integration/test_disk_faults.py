"""A storage node whose file system goes read-only is drained, and back in service once it is
writable again: real processes, node-3 on a tmpfs remounted read-only and back (needs root to
mount; skipped otherwise)."""

from __future__ import annotations

import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import bearer, signup_and_login
from tests.harness import TestCluster
from tests.integration.storage_faults import (
    MiB,
    download,
    hashes_of,
    healed,
    make_admin,
    tmpfs,
    upload,
    wait_until,
)

FAST = {"health_interval": 0.3, "node_down_after": 2, "node_timeout": 2,
        "repair_interval": 0.5, "repair_rate": 500, "audit_rate": 500}


@pytest.fixture
def own_disk(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path/node-3`` on a 64 MiB tmpfs of its own."""
    with tmpfs(tmp_path / "node-3", "64m") as mount:
        yield mount


def node_view(client: httpx.Client, admin: dict[str, str], name: str) -> dict[str, Any]:
    nodes = client.get("/api/v1/admin/nodes", headers=admin).json()["nodes"]
    view: dict[str, Any] = next(n for n in nodes if n["name"] == name)
    return view


def test_a_read_only_disk_is_drained_then_back_in_service_when_writable(
        tmp_path: Path, own_disk: Path) -> None:
    rng = random.Random(31)
    with TestCluster(tmp_path, env=FAST, node_env={"scrub_rate": 0}) as cluster, \
            httpx.Client(base_url=cluster.url, timeout=60) as client:
        alice = bearer(signup_and_login(client, "alice"))
        admin = make_admin(cluster, client)
        files = {f"/f{i}": rng.randbytes(rng.choice([5000, 600_000, 2 * MiB])) for i in range(8)}
        for path, data in files.items():
            assert upload(client, alice, path, data).status_code == 201
        assert cluster.chunk_files("node-3"), "node-3 should hold some replicas"

        subprocess.run(["mount", "-o", "remount,ro", str(own_disk)], check=True)
        wait_until(lambda: node_view(client, admin, "node-3")["disk"] == "read_only", 15,
                   "the API to learn that node-3's disk is read-only")
        files["/after"] = rng.randbytes(3 * MiB)
        assert upload(client, alice, "/after", files["/after"]).status_code == 201
        assert not set(hashes_of(files["/after"])) & {p.name for p in
                                                      cluster.chunk_files("node-3")}
        # Drained: every chunk gets R copies on the other two, node-3 counts none.
        wait_until(lambda: node_view(client, admin, "node-3")["replicas"] == 0
                   and healed(client, admin), 60, "node-3 to be drained")
        for path, data in files.items():
            assert download(client, alice, path) == data
        status = client.get("/api/v1/admin/status", headers=admin).json()
        assert status["draining"] == ["node-3"] and status["under_replicated"] == 0

        subprocess.run(["mount", "-o", "remount,rw", str(own_disk)], check=True)
        wait_until(lambda: node_view(client, admin, "node-3")["disk"] == "ok", 30,
                   "node-3 to take writes again")
        view = node_view(client, admin, "node-3")
        assert view["state"] == "up" and not view["draining"]
        extra = rng.randbytes(4 * MiB)
        assert upload(client, alice, "/back", extra).status_code == 201
        assert download(client, alice, "/back") == extra
