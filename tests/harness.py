"""Start real server processes on free loopback ports, wait until ready, tear them down.

Every integration, e2e and security test drives the product through these: a real API process,
real storage nodes, real SQLite files (or PostgreSQL when ``MINIDROPBOX_TEST_POSTGRES_URL`` is
set), all on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from minidropbox.metadata.db import Database
from minidropbox.service.check import CheckReport, Finding, check_metadata, check_nodes
from minidropbox.storage.node_client import AsyncNodeClient

BIN = Path(sys.executable).parent / "minidropbox"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_block(count: int) -> int:
    """A base port with ``count`` consecutive free ports (`server cluster` uses base..base+N)."""
    rng = random.Random()
    for _ in range(100):
        base = rng.randrange(20_000, 30_000)  # below the usual ephemeral range
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no block of free ports")


class ServerProcess:
    """One child process running ``minidropbox server ...``, logging to a file.

    The server binds its own port: the first start asks for port 0 and reads the port the
    system gave it from ``--port-file`` (so no other process can take a port between its
    choice and its use, as it could with a port picked here and bound later); a restart asks
    for that same port again, as a restarted node keeps the address the API knows it by."""

    def __init__(self, name: str, args: Sequence[str], log_dir: Path,
                 env: dict[str, str] | None = None, ready_path: str = "/healthz",
                 headers: dict[str, str] | None = None) -> None:
        self.name = name
        self.args = [str(BIN), *args]
        self.port = 0
        self.log_path = log_dir / f"{name}.log"
        self.port_file = log_dir / f"{name}.port"
        self.env = {**os.environ, **(env or {})}
        self.ready_path = ready_path
        self.headers = headers or {}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        assert self.port, f"{self.name} has not started"
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        return self.spawn().wait_started(timeout)

    def spawn(self) -> ServerProcess:
        """Start the process without waiting for it (``wait_started``): a cluster's nodes
        start side by side."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.port_file.unlink(missing_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [*self.args, "--port", str(self.port), "--port-file", str(self.port_file)],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        log.close()
        return self

    def wait_started(self, timeout: float = 30.0) -> ServerProcess:
        deadline = time.monotonic() + timeout
        self.port = self._bound_port(deadline)
        self.wait_ready(max(1.0, deadline - time.monotonic()))
        return self

    def _bound_port(self, deadline: float) -> int:
        while time.monotonic() < deadline:
            with contextlib.suppress(FileNotFoundError, ValueError):
                return int(self.port_file.read_text())
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not listen in time:\n{self.log_tail()}")

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                r = httpx.get(self.url + self.ready_path, headers=self.headers, timeout=1.0)
                if r.status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def signal(self, sig: int) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL, the way a crash or an OOM kill looks."""
        self.signal(signal.SIGKILL)
        if self.proc:
            self.proc.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        stop_all([self], timeout)

    def restart(self, timeout: float = 30.0) -> None:
        self.stop()
        self.start(timeout)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def stop_all(processes: Sequence[ServerProcess], timeout: float = 10.0) -> None:
    """SIGTERM to every process first, then wait for each: they shut down side by side."""
    running = [p for p in processes if p.proc is not None and p.proc.poll() is None]
    for process in running:
        process.signal(signal.SIGCONT)  # a paused process must be able to act on SIGTERM
        process.signal(signal.SIGTERM)
    for process in running:
        assert process.proc is not None
        try:
            process.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()


# Databases this process created on the test PostgreSQL server, dropped at the end of the
# session (conftest) so repeated runs do not pile them up.
_created_databases: list[tuple[str, str]] = []


def postgres_url() -> str | None:
    """The test PostgreSQL server (``MINIDROPBOX_TEST_POSTGRES_URL``), if there is one."""
    return os.environ.get("MINIDROPBOX_TEST_POSTGRES_URL") or None


def new_postgres_database(base: str) -> str:
    """A new, empty database on the server at ``base``; returns its URL."""
    import sqlalchemy

    name = "mdb_" + uuid.uuid4().hex[:12]
    admin = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    _created_databases.append((base, name))
    return base.rsplit("/", 1)[0] + "/" + name


def drop_created_databases() -> None:
    """Drop every database ``new_postgres_database`` made (their servers are stopped).

    In a detached child process: PostgreSQL checkpoints on every DROP DATABASE, about a
    second each, and nothing here needs to wait for that.
    """
    if not _created_databases:
        return
    script = (
        "import sys, sqlalchemy\n"
        "for arg in sys.argv[1:]:\n"
        "    base, name = arg.split('|')\n"
        "    e = sqlalchemy.create_engine(base, isolation_level='AUTOCOMMIT')\n"
        "    try:\n"
        "        with e.connect() as c:\n"
        "            c.exec_driver_sql(f'DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)')\n"
        "    except sqlalchemy.exc.SQLAlchemyError:\n"
        "        pass\n"
        "    finally:\n"
        "        e.dispose()\n")
    args = [f"{base}|{name}" for base, name in _created_databases]
    _created_databases.clear()
    subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True)


def database_url_for(data_dir: Path) -> str | None:
    """A fresh PostgreSQL database for this test when PostgreSQL testing is on, else None.

    ``MINIDROPBOX_TEST_DATABASE=sqlite`` keeps the default on SQLite even with a server
    given (``make test`` runs the suite once so, then again on PostgreSQL); tests that need
    PostgreSQL itself ask for it with ``postgres_url()``.
    """
    base = postgres_url()
    if not base or os.environ.get("MINIDROPBOX_TEST_DATABASE") == "sqlite":
        return None
    return new_postgres_database(base)


# Every test signs its users up from 127.0.0.1, more than the per-address signup budget
# allows in an hour; the tests of that budget set their own.
TEST_API_DEFAULTS = {"signups_per_address": 100_000}


def api_env(data_dir: Path, extra: dict[str, Any] | None = None) -> dict[str, str]:
    env = {"MINIDROPBOX_DATA_DIR": str(data_dir)}
    extra = {**TEST_API_DEFAULTS, **(extra or {})}
    url = None if "database_url" in (extra or {}) else database_url_for(data_dir)
    if url:
        env["MINIDROPBOX_DATABASE_URL"] = url
    for key, value in (extra or {}).items():
        env[f"MINIDROPBOX_{key.upper()}"] = str(value)
    return env


def start_api(tmp: Path, nodes: Sequence[str] = (), env: dict[str, Any] | None = None,
              name: str = "api") -> ServerProcess:
    data_dir = tmp / "api-data"
    extra = dict(env or {})
    if nodes:
        extra.setdefault("nodes", ",".join(nodes))
    return ServerProcess(name, ["server", "api"], tmp / "logs",
                         env=api_env(data_dir, extra)).start()


def start_api_replica(api: ServerProcess, name: str) -> ServerProcess:
    """Another API process sharing ``api``'s database, storage nodes and secrets.

    Only meaningful on PostgreSQL: API replicas share nothing but the metadata database.
    """
    env = dict(api.env)
    assert env.get("MINIDROPBOX_DATABASE_URL", "").startswith("postgresql"), \
        "API replicas need a shared PostgreSQL database"
    data_dir = Path(env["MINIDROPBOX_DATA_DIR"])
    for secret in ("jwt_secret", "cluster_secret"):
        key = f"MINIDROPBOX_{secret.upper()}"
        if not env.get(key):  # generated by the first replica: every replica needs the same
            env[key] = (data_dir / "secrets" / secret).read_text().strip()
    env["MINIDROPBOX_DATA_DIR"] = str(data_dir.parent / f"{name}-data")
    return ServerProcess(name, ["server", "api"], api.log_path.parent, env=env).start()


def start_node(tmp: Path, name: str, secret: str,
               env: dict[str, Any] | None = None) -> ServerProcess:
    """A storage node keeping its chunks in ``tmp/name``, ready once /healthz answers.

    ``env`` sets node settings: ``{"scrub_rate": 0}`` becomes ``MINIDROPBOX_NODE_SCRUB_RATE``.
    """
    return node_process(tmp, name, secret, env).start()


def node_process(tmp: Path, name: str, secret: str,
                 env: dict[str, Any] | None = None) -> ServerProcess:
    """``start_node``'s process, not started yet."""
    extra = {f"MINIDROPBOX_NODE_{k.upper()}": str(v) for k, v in (env or {}).items()}
    return ServerProcess(name, ["server", "storage", "--dir", str(tmp / name)], tmp / "logs",
                         env={"MINIDROPBOX_CLUSTER_SECRET": secret, **extra},
                         headers={"Authorization": f"Bearer {secret}"})


class TestCluster:
    """An API and N storage nodes as separate real processes, for tests that hurt nodes.

    Stopping it (``stop()``, or leaving ``with``) runs ``admin check`` on the metadata between
    stopping the API and the nodes, and fails on any broken *must* invariant: every test on a
    cluster also proves it left the data consistent. A test that breaks one on purpose says
    which with ``expect_broken`` (after asserting that the check catches it).
    """

    __test__ = False  # not a pytest test class

    def __init__(self, tmp: Path, nodes: int = 3, replicas: int = 2,
                 env: dict[str, Any] | None = None,
                 node_env: dict[str, Any] | None = None) -> None:
        self.tmp = tmp
        self.replicas = replicas
        self.secret = "test-cluster-secret-" + uuid.uuid4().hex
        self.expected_broken: set[str] = set()
        self.nodes = [node_process(tmp, f"node-{i}", self.secret, env=node_env).spawn()
                      for i in range(1, nodes + 1)]
        try:
            for node in self.nodes:
                node.wait_started()
            specs = [f"{n.name}={n.url}" for n in self.nodes]
            extra = {"cluster_secret": self.secret, "replicas": replicas,
                     "health_interval": 0.5, "node_down_after": 3, "node_timeout": 2,
                     **(env or {})}
            self.api = start_api(tmp, nodes=specs, env=extra)
        except BaseException:
            stop_all(self.nodes)  # no node outlives a cluster that never came up
            raise
        self.url = self.api.url

    def node_dir(self, name: str) -> Path:
        return self.tmp / name

    def chunk_files(self, name: str) -> list[Path]:
        """The chunk files a node holds (fan-out folders, no temp or quarantine files)."""
        root = self.node_dir(name)
        return [p for p in root.glob("??/??/*") if p.is_file() and len(p.name) == 64]

    @property
    def database_url(self) -> str:
        return self.api.env.get("MINIDROPBOX_DATABASE_URL") or \
            f"sqlite:///{(Path(self.api.env['MINIDROPBOX_DATA_DIR']) / 'metadata.db').resolve()}"

    def check(self, nodes: bool = False) -> CheckReport:
        """``admin check`` as a library call, straight on the metadata database; with
        ``nodes`` every recorded copy is also asked for on its node."""
        db = Database(self.database_url)
        try:
            report = check_metadata(db, self.replicas)
            if nodes:
                report.findings += asyncio.run(self._check_nodes(db))
        finally:
            db.dispose()
        return report

    async def _check_nodes(self, db: Database) -> list[Finding]:
        clients = {n.name: AsyncNodeClient(n.url, self.secret) for n in self.nodes}
        try:
            return await check_nodes(db, {name: c.head for name, c in clients.items()},
                                     rate=0)
        finally:
            for client in clients.values():
                await client.aclose()

    def expect_broken(self, *names: str) -> None:
        """Invariants this test broke on purpose: the check on stop tolerates them."""
        self.expected_broken.update(names)

    def stop(self, check: bool = True) -> None:
        self.api.stop()
        try:
            if check:
                report = self.check()
                broken = [f for f in report.must_violations
                          if f.name not in self.expected_broken]
                assert not broken, "the test left broken invariants: " + "; ".join(
                    f"{f.name}: {f.violations} ({', '.join(f.sample[:3])})" for f in broken)
        finally:
            stop_all(self.nodes)

    def __enter__(self) -> TestCluster:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.stop(check=exc_type is None)  # a failing test's own error says more
