"""A fresh local Mini-Dropbox cluster for one bench run, and CLI users driving it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.peers import free_port
from minidropbox.launcher import Cluster

PASSWORD = "bench password 123"
CLI = [sys.executable, "-m", "minidropbox"]


class System:
    """3 storage nodes, R=2, one API, under ``workdir``; stopped by ``stop()``."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        while any(_taken(self.port + i) for i in range(1, 4)):
            self.port = free_port()
        self.cluster = Cluster(workdir / "cluster", nodes=3, replicas=2, port=self.port,
                               backup=False)
        # The concurrent-clients scenario signs up 50 accounts per run from this one address.
        api = next(c for c in self.cluster.children if c.name == "api")
        api.env["MINIDROPBOX_SIGNUPS_PER_ADDRESS"] = "100000"
        # The per-account request cap (6,000 a minute by default) is an abuse limit, not a
        # speed: WebDAV clients spend three requests per small file (MKCOL of the folder, PUT,
        # PROPFIND), so at the default it, not the server, would set the small-file rows.
        api.env["MINIDROPBOX_REQUESTS_PER_MINUTE"] = "1000000"
        self.cluster.start()
        self.url = self.cluster.url
        self.workdir = workdir

    def api_pid(self) -> int:
        child = next(c for c in self.cluster.children if c.name == "api")
        assert child.proc is not None
        return child.proc.pid

    def node_pids(self) -> list[int]:
        return [c.proc.pid for c in self.cluster.children
                if c.name.startswith("node") and c.proc is not None]

    def stop(self) -> None:
        self.cluster.stop()


def _taken(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class User:
    """A CLI user with their own config dir, talking to ``server``."""

    def __init__(self, workdir: Path, name: str, server: str, signup: bool = True) -> None:
        self.name = name
        self.server = server
        self.config = workdir / f"config-{name}"
        self.env = dict(os.environ, XDG_CONFIG_HOME=str(self.config))
        if signup:
            self.run("signup", name, "--password-stdin", stdin=PASSWORD + "\n")
        self.run("login", name, "--password-stdin", stdin=PASSWORD + "\n")

    def run(self, *args: str, stdin: str | None = None, json_out: bool = False) -> Any:
        cmd = [*CLI, "--server", self.server, "--quiet"]
        if json_out:
            cmd.append("--json")
        result = subprocess.run([*cmd, *args], env=self.env, input=stdin, text=True,
                                capture_output=True)
        if result.returncode != 0:
            raise RuntimeError(f"minidropbox {' '.join(args)} failed: {result.stderr.strip()}")
        if json_out:
            import json

            return json.loads(result.stdout)
        return result.stdout

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*CLI, "--server", self.server, "--quiet", *args], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def peak_rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def timed(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start
