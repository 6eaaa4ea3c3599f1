"""``minidropbox server cluster``: the whole topology as local child processes.

Starts N storage nodes (``DATA/nodes/node-i``), the API (``DATA/api``) and, when available,
the backup service, all on loopback with one cluster secret from ``DATA/secrets``. Waits
until every process is ready, prints the URL, and on Ctrl-C or SIGTERM stops them all (API
first, so no request is left half-written to a node that is already gone).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx

from minidropbox.settings import load_or_create_secret


@dataclass
class Child:
    name: str
    args: list[str]
    ready_url: str
    env: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self, log_dir: Path) -> None:
        log = open(log_dir / f"{self.name}.log", "ab")  # noqa: SIM115 - child keeps it
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def ready(self) -> bool:
        try:
            return httpx.get(self.ready_url, headers=self.headers, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Cluster:
    def __init__(self, data: Path, nodes: int, replicas: int, port: int, host: str = "127.0.0.1",
                 backup: bool = True, backup_every: str | None = None) -> None:
        self.data = data.resolve()
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"
        self.children: list[Child] = []
        self.log_dir = self.data / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        secret = load_or_create_secret(self.data, "cluster_secret")
        jwt_secret = load_or_create_secret(self.data, "jwt_secret")
        exe = [sys.executable, "-m", "minidropbox"]
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("MINIDROPBOX_")}
        base_env.update({"MINIDROPBOX_CLUSTER_SECRET": secret, "PYTHONUNBUFFERED": "1"})
        for key in ("MINIDROPBOX_DATABASE_URL", "MINIDROPBOX_JSON_LOGS", "MINIDROPBOX_CONFIG",
                    "MINIDROPBOX_QUOTA_BYTES"):
            if key in os.environ:
                base_env[key] = os.environ[key]
        auth = {"Authorization": f"Bearer {secret}"}
        specs = []
        for i in range(1, nodes + 1):
            name, node_port = f"node-{i}", port + i
            node_url = f"http://{host}:{node_port}"
            specs.append(f"{name}={node_url}")
            self.children.append(Child(
                name, [*exe, "server", "storage", "--dir", str(self.data / "nodes" / name),
                       "--host", host, "--port", str(node_port)],
                node_url + "/healthz", dict(base_env), auth))
        api_env = dict(base_env, MINIDROPBOX_JWT_SECRET=jwt_secret,
                       MINIDROPBOX_NODES=",".join(specs), MINIDROPBOX_REPLICAS=str(replicas))
        self.children.append(Child(
            "api", [*exe, "server", "api", "--data", str(self.data / "api"), "--host", host,
                    "--port", str(port)], self.url + "/readyz", api_env))
        if backup and _backup_available():
            args = [*exe, "server", "backup", "--repo", str(self.data / "backup")]
            if backup_every:
                args += ["--every", backup_every]
            self.children.append(Child("backup", args, "", dict(api_env, MINIDROPBOX_DATA_DIR=str(
                self.data / "api"))))

    def start(self, timeout: float = 60.0) -> None:
        # Children without a readiness URL (the backup service) start once the others are
        # ready, so their first run finds the metadata database already migrated.
        for child in self.children:
            if child.ready_url:
                child.start(self.log_dir)
        deadline = time.monotonic() + timeout
        pending = [c for c in self.children if c.ready_url]
        while pending:
            for child in list(pending):
                if child.proc is not None and child.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"{child.name} exited at start; see "
                                       f"{self.log_dir / (child.name + '.log')}")
                if child.ready():
                    pending.remove(child)
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("cluster not ready in time: " +
                                   ", ".join(c.name for c in pending))
            time.sleep(0.1)
        for child in self.children:
            if not child.ready_url:
                child.start(self.log_dir)

    def stop(self) -> None:
        # API and backup first, then the nodes they write to.
        for child in reversed(self.children):
            child.stop()

    def wait(self) -> int:
        """Block until a signal arrives or a child dies; returns the exit code to use."""
        stop = {"flag": False}

        def on_signal(_sig: int, _frame: FrameType | None) -> None:
            stop["flag"] = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        while not stop["flag"]:
            for child in self.children:
                if child.proc is not None and child.proc.poll() is not None:
                    print(f"{child.name} exited with {child.proc.returncode}; stopping the "
                          f"cluster (log: {self.log_dir / (child.name + '.log')})",
                          file=sys.stderr)
                    self.stop()
                    return 1
            time.sleep(0.2)
        self.stop()
        return 0


def _backup_available() -> bool:
    try:
        import minidropbox.backup.service  # noqa: F401
    except ImportError:
        return False
    return True
