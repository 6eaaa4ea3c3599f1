"""``server cluster`` supervises its children: kill -9 any of them and the service goes on.

Real processes: the launcher as a user runs it, then ``kill -9`` of a storage node and of the
API, checked from the outside (downloads, uploads, the supervisor's state, ``admin nodes``,
``/metrics``), and a child that cannot start, left stopped after its crash-loop limit.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from minidropbox.core.restart import RestartPolicy
from minidropbox.launcher import FAILED, RUNNING, Child, Cluster
from tests.conftest import bearer, signup_and_login
from tests.integration.storage_faults import MiB, download, hashes_of, upload, wait_until
from tests.supervised import SupervisedCluster

FAST = {"health_interval": 0.3, "node_down_after": 2, "node_timeout": 1,
        "repair_interval": 0.5, "repair_rate": 500, "audit_rate": 500}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent has not reaped it yet.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


def test_kill_9_of_a_node_or_the_api_is_healed_while_the_service_goes_on(
        tmp_path: Path) -> None:
    rng = random.Random(5)
    cluster = SupervisedCluster(tmp_path, config=FAST)
    with cluster, httpx.Client(base_url=cluster.url, timeout=60) as client:
        alice = bearer(signup_and_login(client, "alice"))
        admin = cluster.make_admin(client)
        files = {f"/f{i}": rng.randbytes(rng.choice([2000, 700_000, 3 * MiB])) for i in range(6)}
        for path, data in files.items():
            assert upload(client, alice, path, data).status_code == 201

        victim = "node-2"
        old_pid = cluster.signal(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        # Straight away: every file downloads, and an upload still gets R copies.
        for path, data in files.items():
            assert download(client, alice, path) == data
        files["/while-down"] = rng.randbytes(2 * MiB)
        assert upload(client, alice, "/while-down", files["/while-down"]).status_code == 201

        back = wait_until(lambda: cluster.state()[victim]["state"] == RUNNING
                          and cluster.state()[victim]["pid"] != old_pid, 30,
                          f"{victim} to be restarted")
        assert back
        print(f"{victim} back {time.monotonic() - killed_at:.1f} s after kill -9")
        assert not _alive(old_pid)
        entry = cluster.state()[victim]
        assert entry["restarts"] == 1 and entry["last_exit"] == "killed by SIGKILL"
        assert "restarting it in" in cluster.log() and victim in cluster.log()

        # The API shows it: admin nodes, admin status and /metrics.
        nodes = client.get("/api/v1/admin/nodes", headers=admin).json()["nodes"]
        assert {n["name"]: n["restarts"] for n in nodes} == {"node-1": 0, "node-2": 1,
                                                            "node-3": 0}
        wait_until(lambda: next(n for n in client.get("/api/v1/admin/nodes", headers=admin)
                                .json()["nodes"] if n["name"] == victim)["state"] == "up",
                   15, f"the API to see {victim} up again")
        samples = {(s.name, s.labels.get("process")): s.value for family in
                   text_string_to_metric_families(client.get("/metrics").text)
                   for s in family.samples}
        assert samples[("minidropbox_process_restarts_total", victim)] == 1
        assert samples[("minidropbox_process_running", victim)] == 1

        # At least R copies of every chunk, on disk (a write that timed out on a node that
        # was still starting can leave a third, unrecorded one: the orphan sweep's job).
        def two_copies_each() -> bool:
            held = [h for n in cluster.nodes for h in (p.name for p in cluster.chunk_files(n))]
            return all(held.count(h) >= 2 for d in files.values() for h in hashes_of(d))
        wait_until(two_copies_each, 30, "two copies of every chunk")
        status = client.get("/api/v1/admin/status", headers=admin).json()
        assert status["under_replicated"] == 0 and status["unreadable"] == 0, status

        # kill -9 of the API: it comes back on the same URL, sessions still valid.
        api_pid = cluster.signal("api", signal.SIGKILL)
        wait_until(lambda: cluster.state()["api"]["state"] == RUNNING
                   and cluster.state()["api"]["pid"] != api_pid, 60, "the API to come back")
        for path, data in files.items():
            assert download(client, alice, path) == data
        status = client.get("/api/v1/admin/status", headers=admin).json()
        assert {p["name"]: p["restarts"] for p in status["processes"]}["api"] == 1

        children = [p["pid"] for p in cluster.state().values()]
        assert cluster.stop() == 0
    # Ctrl-C / SIGTERM stops everything.
    assert [pid for pid in children if _alive(pid)] == []
    assert {p["state"] for p in cluster.state().values()} == {"stopped"}


def test_a_child_that_keeps_dying_young_is_left_stopped(tmp_path: Path) -> None:
    policy = RestartPolicy(base=0.05, cap=0.2, quick=5.0, limit=3)
    launcher = Cluster(tmp_path / "data", nodes=1, replicas=1, port=1, backup=False,
                       policy=policy)
    flaky = Child("flaky", [sys.executable, "-c", "raise SystemExit(3)"], "", dict(os.environ))
    launcher.children = [flaky]
    flaky.start(launcher.log_dir)
    deadline = time.monotonic() + 30
    while flaky.state != FAILED:
        assert time.monotonic() < deadline, flaky.view()
        launcher.supervise_once(time.monotonic())
        time.sleep(0.02)
    assert flaky.restarts == 2 and flaky.last_exit == "exited with 3"
    assert flaky.proc is not None and flaky.proc.poll() == 3
    # Nothing more happens to it until an operator steps in.
    launcher.supervise_once(time.monotonic() + 3600)
    assert flaky.state == FAILED and flaky.restarts == 2
