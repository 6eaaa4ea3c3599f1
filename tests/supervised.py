"""``minidropbox server cluster`` as a user runs it: one supervisor and its children.

For the tests that hurt processes the supervisor must bring back (tests/integration/
test_supervisor.py, tests/chaos/). The children's pids come from ``DATA/supervisor.json``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import PASSWORD, bearer, signup_and_login
from tests.harness import BIN, free_port_block

PORT_ATTEMPTS = 3


class SupervisedCluster:
    """``server cluster --data tmp/data`` on a free block of ports; ``config`` becomes the
    TOML file every child reads (``MINIDROPBOX_CONFIG``).

    ``server cluster`` takes a base port and gives the nodes the next ones, so the block is
    chosen here, below the ephemeral range every other test server binds in (they ask for
    port 0). Another process can still take a port of the block before the cluster starts:
    the supervisor then says so before starting anything, and a new block is tried."""

    __test__ = False

    def __init__(self, tmp: Path, nodes: int = 3, replicas: int = 2,
                 config: dict[str, Any] | None = None, backup: bool = False) -> None:
        self.tmp = tmp
        self.data = tmp / "data"
        self.nodes = [f"node-{i}" for i in range(1, nodes + 1)]
        self.log_path = tmp / "cluster.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINIDROPBOX_")}
        if config:
            path = tmp / "config.toml"
            path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in config.items()))
            env["MINIDROPBOX_CONFIG"] = str(path)
        self.env = env
        tmp.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self.port = free_port_block(nodes + 1)
            self.url = f"http://127.0.0.1:{self.port}"
            args = [str(BIN), "server", "cluster", "--data", str(self.data), "--port",
                    str(self.port), "--nodes", str(nodes), "--replicas", str(replicas)]
            if not backup:
                args.append("--no-backup")
            log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
            self.proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
            log.close()
            try:
                self.wait_ready()
                return
            except AssertionError:
                taken = self.proc.poll() is not None and "is in use" in self.log()
                if not taken or attempt == PORT_ATTEMPTS:
                    raise

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log()
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"cluster not ready:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def state(self) -> dict[str, dict[str, Any]]:
        """The supervisor's view, by process name."""
        body = json.loads((self.data / "supervisor.json").read_text())
        return {p["name"]: p for p in body["processes"]}

    def pid(self, name: str) -> int:
        pid = self.state()[name]["pid"]
        assert isinstance(pid, int), f"{name} has no process: {self.state()[name]}"
        return pid

    def signal(self, name: str, sig: int) -> int:
        """Send ``sig`` to a child's process group; returns its pid."""
        pid = self.pid(name)
        os.killpg(pid, sig)
        return pid

    def chunk_files(self, name: str) -> list[Path]:
        root = self.data / "nodes" / name
        return [p for p in root.glob("??/??/*") if p.is_file() and len(p.name) == 64]

    def make_admin(self, client: httpx.Client, name: str = "admin") -> dict[str, str]:
        signup_and_login(client, name)
        subprocess.run([str(BIN), "server", "grant-admin", name, "--data",
                        str(self.data / "api")], env=self.env, check=True,
                       capture_output=True, timeout=60)
        r = client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return bearer(r.json())

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM to the supervisor, as Ctrl-C would; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return int(self.proc.returncode)

    def __enter__(self) -> SupervisedCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
