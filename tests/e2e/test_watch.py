"""``minidropbox watch`` run as a user runs it: the real script in a subprocess, printing the
changes another client makes, surviving a server restart, and ending cleanly on a signal."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any

import httpx

from tests.conftest import PASSWORD, bearer, signup_and_login
from tests.harness import BIN, ServerProcess


class Watcher:
    """A ``minidropbox watch`` process whose output lines are collected as they appear."""

    def __init__(self, server: ServerProcess, home: Path, username: str, *args: str) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MINIDROPBOX_")}
        self.env.update({"XDG_CONFIG_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200"})
        login = subprocess.run([str(BIN), "--server", server.url, "login", username,
                                "--password-stdin"], input=PASSWORD + "\n", text=True,
                               capture_output=True, env=self.env, timeout=60)
        assert login.returncode == 0, login.stderr
        self.proc = subprocess.Popen([str(BIN), "watch", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=self.env)
        self.out: queue.Queue[str] = queue.Queue()
        self.err: queue.Queue[str] = queue.Queue()
        self.stderr_lines: list[str] = []
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=_pump, args=(stream, sink), daemon=True).start()

    # Waits are long: on a loaded machine a process can start or answer many seconds late;
    # a wait that succeeds costs no more for it.
    def wait_ready(self, timeout: float = 60.0) -> None:
        line = self.err.get(timeout=timeout)
        self.stderr_lines.append(line)
        assert line.startswith("Watching "), line

    def lines(self, count: int, timeout: float = 60.0) -> list[str]:
        deadline = time.monotonic() + timeout
        got = []
        while len(got) < count:
            try:
                got.append(self.out.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"expected {count} lines, got {got}") from None
        return got

    def stderr_until(self, prefix: str, timeout: float) -> list[str]:
        """Collect stderr lines until one starts with ``prefix``; return all seen so far."""
        deadline = time.monotonic() + timeout
        while not any(line.startswith(prefix) for line in self.stderr_lines):
            try:
                self.stderr_lines.append(
                    self.err.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"no {prefix!r} in {self.stderr_lines}") from None
        return self.stderr_lines

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        while not self.err.empty():
            self.stderr_lines.append(self.err.get())
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _pump(stream: IO[str] | None, sink: queue.Queue[str]) -> None:
    assert stream is not None
    for line in stream:
        sink.put(line.rstrip("\n"))


def _ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def test_watch_prints_each_change_another_client_makes_and_survives_a_restart(
        api_server: ServerProcess, tmp_path: Path) -> None:
    with httpx.Client(base_url=api_server.url, timeout=30) as other:
        auth = bearer(signup_and_login(other, "alice"))  # "another client": its own session
        watcher = Watcher(api_server, tmp_path / "watcher", "alice", "--json")
        try:
            watcher.wait_ready()
            _ok(other.post("/api/v1/files/folder", headers=auth, json={"path": "/Docs"}))
            _ok(other.post("/api/v1/files/commit", headers=auth, json={
                "path": "/Docs/a.txt", "size": 0, "chunks": [], "parent_version": None}))
            _ok(other.post("/api/v1/files/move", headers=auth,
                           json={"from": "/Docs/a.txt", "to": "/Docs/b.txt"}))
            _ok(other.delete("/api/v1/files", headers=auth, params={"path": "/Docs"}))
            printed = [json.loads(line) for line in watcher.lines(4)]
            assert [(c["op"], c["path"], c["from_path"], c["version"]) for c in printed] == [
                ("mkdir", "/Docs", None, None), ("commit", "/Docs/a.txt", None, 1),
                ("move", "/Docs/b.txt", "/Docs/a.txt", 1), ("delete", "/Docs", None, None)]

            # The server restarts under it: it reconnects and carries on where it was.
            api_server.restart()
            _ok(other.post("/api/v1/files/folder", headers=auth, json={"path": "/after"}))
            [line] = watcher.lines(1)
            assert json.loads(line)["path"] == "/after"
            # ...and said so on stderr, once each way.
            said = watcher.stderr_until("Connected again", timeout=60)
            assert len([x for x in said if x.startswith("Lost the connection to")]) == 1, said
            assert watcher.stop(signal.SIGINT) == 0
        finally:
            watcher.kill()
    assert not [line for line in watcher.stderr_lines if "Traceback" in line]


def test_watch_human_lines_over_long_polling(api_server: ServerProcess, tmp_path: Path) -> None:
    with httpx.Client(base_url=api_server.url, timeout=30) as other:
        auth = bearer(signup_and_login(other, "bob"))
        watcher = Watcher(api_server, tmp_path / "watcher", "bob", "--poll")
        try:
            watcher.wait_ready()
            _ok(other.post("/api/v1/files/commit", headers=auth, json={
                "path": "/notes.txt", "size": 0, "chunks": [], "parent_version": None}))
            _ok(other.post("/api/v1/files/move", headers=auth,
                           json={"from": "/notes.txt", "to": "/old notes.txt"}))
            lines = watcher.lines(2)
            assert lines[0].endswith("commit    /notes.txt  v1"), lines
            assert lines[1].endswith("move      /notes.txt -> /old notes.txt  v1"), lines
            assert time.strptime(lines[0][:19], "%Y-%m-%d %H:%M:%S")
            assert watcher.stop(signal.SIGTERM) == 0
        finally:
            watcher.kill()
    assert not [line for line in watcher.stderr_lines if "Traceback" in line]
