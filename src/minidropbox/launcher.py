"""``minidropbox server cluster``: the whole topology as local, supervised child processes.

Starts N storage nodes (``DATA/nodes/node-i``), the API (``DATA/api``) and, when available,
the backup service, all on loopback with one cluster secret from ``DATA/secrets``. Waits
until every process is ready and prints the URL. From then on it supervises: a child that
exits, whatever the reason (a crash, ``kill -9``, the OOM killer), is started again after a
backoff (``core/restart.py``), and one that keeps dying young is left stopped as a crash loop.
Each exit and restart is logged and written to ``DATA/supervisor.json``, which the API reads
for ``/metrics`` and ``minidropbox admin nodes`` / ``admin status``. Only Ctrl-C or SIGTERM
stops the cluster: the API and the backup service first, so no request is left half-written
to a node that is already gone, then the nodes.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from minidropbox.core.errors import MiniDropboxError
from minidropbox.core.restart import RestartPolicy
from minidropbox.settings import load_or_create_secret

log = logging.getLogger("minidropbox.supervisor")

STATE_FILE = "supervisor.json"
POLL = 0.2  # seconds between looks at the children

# What a child is doing, as written to the state file.
STARTING, RUNNING, RESTARTING, FAILED, STOPPED = (
    "starting", "running", "restarting", "crash-loop", "stopped")


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the launcher dies, even by ``kill -9``,
    instead of living on as an orphan that holds its port (Linux only)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with {code}"


@dataclass
class Child:
    name: str
    args: list[str]
    ready_url: str
    env: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    state: str = STOPPED
    restarts: int = 0
    streak: int = 0  # quick exits in a row (core/restart.py)
    started_at: float = 0.0  # monotonic
    was_ready: bool = False
    restart_at: float = 0.0  # monotonic, while RESTARTING
    last_exit: str | None = None
    last_exit_at: float | None = None  # wall clock

    def start(self, log_dir: Path) -> None:
        log_file = open(log_dir / f"{self.name}.log", "ab")  # noqa: SIM115 - child keeps it
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=log_file,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        log_file.close()
        self.state, self.started_at, self.was_ready = STARTING, time.monotonic(), False

    def ready(self) -> bool:
        try:
            return httpx.get(self.ready_url, headers=self.headers, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 10.0) -> None:
        self.state = STOPPED
        if self.proc is None or self.proc.poll() is not None:
            return
        self.signal(signal.SIGCONT)  # a paused process would never see the SIGTERM
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait()

    def view(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state,
                "pid": self.proc.pid if self.proc is not None and self.state != STOPPED
                else None,
                "restarts": self.restarts, "last_exit": self.last_exit,
                "last_exit_at": self.last_exit_at}


class ClusterStartFailed(MiniDropboxError):
    """The cluster could not start."""

    exit_code = 7


class PortInUse(ClusterStartFailed):
    """A port the cluster needs is taken."""

    exit_code = 5


def _last_line(logfile: Path) -> str:
    """The last non-empty line a child logged: usually why it stopped."""
    try:
        lines = [ln for ln in logfile.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return lines[-1].strip()[-300:] if lines else "nothing logged"


class Cluster:
    def __init__(self, data: Path, nodes: int, replicas: int, port: int, host: str = "127.0.0.1",
                 backup: bool = True, backup_every: str | None = None,
                 policy: RestartPolicy | None = None, s3_url: str | None = None) -> None:
        self.data = data.resolve()
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"
        self.policy = policy or RestartPolicy()
        self.children: list[Child] = []
        self.log_dir = self.data / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.data / STATE_FILE
        secret = load_or_create_secret(self.data, "cluster_secret")
        jwt_secret = load_or_create_secret(self.data, "jwt_secret")
        exe = [sys.executable, "-m", "minidropbox"]
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("MINIDROPBOX_")}
        base_env.update({"MINIDROPBOX_CLUSTER_SECRET": secret, "PYTHONUNBUFFERED": "1"})
        for key in ("MINIDROPBOX_DATABASE_URL", "MINIDROPBOX_JSON_LOGS", "MINIDROPBOX_CONFIG",
                    "MINIDROPBOX_QUOTA_BYTES", "MINIDROPBOX_S3_CREDENTIALS_FILE"):
            if key in os.environ:
                base_env[key] = os.environ[key]
        auth = {"Authorization": f"Bearer {secret}"}
        # A bucket replaces the nodes: one "node" named s3, one copy (the store keeps copies).
        specs = [f"s3={s3_url}"] if s3_url else []
        nodes, replicas = (0, 1) if s3_url else (nodes, replicas)
        for i in range(1, nodes + 1):
            name, node_port = f"node-{i}", port + i
            node_url = f"http://{host}:{node_port}"
            specs.append(f"{name}={node_url}")
            self.children.append(Child(
                name, [*exe, "server", "storage", "--dir", str(self.data / "nodes" / name),
                       "--host", host, "--port", str(node_port)],
                node_url + "/healthz", dict(base_env), auth))
        api_env = dict(base_env, MINIDROPBOX_JWT_SECRET=jwt_secret,
                       MINIDROPBOX_NODES=",".join(specs), MINIDROPBOX_REPLICAS=str(replicas),
                       MINIDROPBOX_SUPERVISOR_STATE=str(self.state_path))
        self.children.append(Child(
            "api", [*exe, "server", "api", "--data", str(self.data / "api"), "--host", host,
                    "--port", str(port)], self.url + "/readyz", api_env))
        if backup and _backup_available():
            args = [*exe, "server", "backup", "--repo", str(self.data / "backup")]
            if backup_every:
                args += ["--every", backup_every]
            self.children.append(Child("backup", args, "", dict(api_env, MINIDROPBOX_DATA_DIR=str(
                self.data / "api"))))

    @property
    def ports(self) -> list[int]:
        """Every port this cluster's children listen on."""
        return [int(c.args[c.args.index("--port") + 1]) for c in self.children
                if "--port" in c.args]

    def check_ports(self) -> None:
        """Fail before anything starts when a port is taken: a readiness probe would
        otherwise reach whatever already listens there (another cluster) and look fine."""
        for port in self.ports:
            with socket.socket() as sock:
                try:
                    sock.bind((self.host, port))
                except OSError as exc:
                    raise PortInUse(
                        f"Port {port} on {self.host} is in use ({exc.strerror}): another "
                        f"Mini-Dropbox or another server holds it; pick other ports with "
                        f"--port (make run PORT=...); the API takes PORT, the nodes the next "
                        f"{len(self.ports) - 1}.") from None

    def start(self, timeout: float = 60.0) -> None:
        """Start every child and wait until they answer; a child that exits now is fatal
        (it cannot start at all: a port in use, a bad configuration)."""
        # Children without a readiness URL (the backup service) start once the others are
        # ready, so their first run finds the metadata database already migrated.
        try:
            for child in self.children:
                if child.ready_url:
                    child.start(self.log_dir)
            self._write_state()
            deadline = time.monotonic() + timeout
            pending = [c for c in self.children if c.ready_url]
            while pending:
                for child in list(pending):
                    if child.proc is not None and child.proc.poll() is not None:
                        logfile = self.log_dir / (child.name + ".log")
                        raise ClusterStartFailed(f"{child.name} exited at start: "
                                                 f"{_last_line(logfile)} (log: {logfile})")
                    if child.ready():
                        child.state, child.was_ready = RUNNING, True
                        pending.remove(child)
                if time.monotonic() > deadline:
                    raise ClusterStartFailed(
                        f"Not ready after {timeout:.0f} s: " + ", ".join(
                            f"{c.name} ({_last_line(self.log_dir / (c.name + '.log'))})"
                            for c in pending))
                time.sleep(0.1)
            for child in self.children:
                if not child.ready_url:
                    child.start(self.log_dir)
            self._write_state()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        # API and backup first, then the nodes they write to.
        for child in reversed(self.children):
            child.stop()
        self._write_state()

    def wait(self) -> int:
        """Supervise until SIGINT or SIGTERM, then stop everything; returns the exit code."""
        stop = {"flag": False}

        def on_signal(_sig: int, _frame: FrameType | None) -> None:
            stop["flag"] = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        while not stop["flag"]:
            if self.supervise_once(time.monotonic()):
                self._write_state()
            time.sleep(POLL)
        log.info("stopping the cluster")
        self.stop()
        return 0

    def supervise_once(self, now: float) -> bool:
        """One look at every child: note exits, restart those due, see who is ready again.
        True when something changed."""
        changed = False
        for child in self.children:
            if child.state in (STARTING, RUNNING) and child.proc is not None \
                    and child.proc.poll() is not None:
                self._exited(child, child.proc.returncode, now)
                changed = True
            elif child.state == RESTARTING and now >= child.restart_at:
                child.restarts += 1
                log.warning("restarting %s (restart %d)", child.name, child.restarts)
                child.start(self.log_dir)
                changed = True
            elif child.state == STARTING and self._became_ready(child, now):
                child.state, child.was_ready = RUNNING, True
                if child.restarts:
                    log.info("%s is back (ready %.1f s after its restart)", child.name,
                             now - child.started_at)
                changed = True
        return changed

    def _became_ready(self, child: Child, now: float) -> bool:
        # The backup service has no readiness URL: alive past the quick-exit window will do.
        if not child.ready_url:
            return now - child.started_at >= self.policy.quick
        return child.ready()

    def _exited(self, child: Child, code: int, now: float) -> None:
        ran = now - child.started_at
        child.last_exit, child.last_exit_at = describe_exit(code), time.time()
        child.streak, delay = self.policy.after_exit(child.streak, ran, child.was_ready)
        logfile = self.log_dir / f"{child.name}.log"
        if delay is None:
            child.state = FAILED
            log.error("%s %s after %.1f s, %d quick exits in a row: not restarting it "
                      "(crash loop; see %s)", child.name, child.last_exit, ran, child.streak,
                      logfile)
            return
        child.state, child.restart_at = RESTARTING, now + delay
        log.warning("%s %s after %.1f s; restarting it in %.1f s (log: %s)", child.name,
                    child.last_exit, ran, delay, logfile)

    def _write_state(self) -> None:
        """``DATA/supervisor.json``: what each child is doing and how often it restarted."""
        body = {"supervisor_pid": os.getpid(), "updated_at": time.time(),
                "processes": [c.view() for c in self.children]}
        temp = self.state_path.with_name(f".{STATE_FILE}.tmp")
        temp.write_text(json.dumps(body, indent=1))
        os.replace(temp, self.state_path)


def _backup_available() -> bool:
    try:
        import minidropbox.backup.service  # noqa: F401
    except ImportError:
        return False
    return True
