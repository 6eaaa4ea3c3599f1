"""Sync clients for end-to-end tests: each a real ``minidropbox sync`` process with its own
config folder (so its own session) and its own local folder, against one real cluster."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from minidropbox.client.config import Credentials
from minidropbox.client.localpaths import TMP_PREFIX
from minidropbox.core.chunking import chunk_bytes, content_hash
from tests.conftest import PASSWORD
from tests.harness import BIN

STATE_DIR = ".minidropbox"


def wait_until(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.05,
               message: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``message`` otherwise.

    The default wait is long on purpose: on a loaded machine starting a sync process and its
    first round can take many seconds, and a wait that passes costs no more for it."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def local_tree(root: Path) -> dict[str, bytes | None]:
    """Every file (bytes) and folder (None) under ``root``, minus sync's own state."""
    out: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        if rel_dir == STATE_DIR or rel_dir.startswith(STATE_DIR + "/"):
            continue
        for d in dirnames:
            if rel_dir == "." and d == STATE_DIR:
                continue
            out["/" + (d if rel_dir == "." else f"{rel_dir}/{d}")] = None
        for name in filenames:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            try:
                out["/" + rel] = (Path(dirpath) / name).read_bytes()
            except FileNotFoundError:
                continue
    return out


def temp_files(root: Path) -> list[str]:
    return [str(p) for p in root.rglob(f"{TMP_PREFIX}*")]


def digest(data: bytes) -> str:
    """The server's content hash of ``data``."""
    return content_hash(ref.hash for ref, _ in chunk_bytes(data))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


class SyncClient:
    """One device: a config folder, a local folder, and (when running) a sync process."""

    def __init__(self, url: str, base: Path, device: str, username: str,
                 remote: str = "/") -> None:
        self.url = url
        self.device = device
        self.home = base / f"home-{device}"
        self.root = base / f"sync-{device}"
        self.root.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        self.remote = remote
        self.log_path = base / f"sync-{device}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MINIDROPBOX_")}
        self.env.update({"XDG_CONFIG_HOME": str(self.home / "config"), "NO_COLOR": "1",
                         "COLUMNS": "200", "MINIDROPBOX_DEVICE": device})
        self.proc: subprocess.Popen[bytes] | None = None
        self._login(username)

    def _login(self, username: str) -> None:
        """What ``minidropbox login`` leaves behind, without starting a process for it."""
        r = httpx.post(self.url + "/api/v1/auth/login", timeout=30,
                       json={"username": username, "password": PASSWORD, "device": self.device})
        r.raise_for_status()
        body = r.json()
        creds = Credentials(self.url, username, body["access_token"], body["refresh_token"],
                            time.time() + body["expires_in"])
        folder = self.home / "config" / "minidropbox"
        folder.mkdir(parents=True, mode=0o700)
        path = folder / "credentials.json"
        path.write_text(json.dumps(asdict(creds)))
        path.chmod(0o600)

    def cli(self, *args: str, input: str | None = None,
            ok: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(BIN), "--server", self.url, *args], input=input,
                              capture_output=True, text=True, env=self.env, timeout=120)
        if ok:
            assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stderr}"
        return proc

    def once(self, *extra: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return self.cli("sync", str(self.root), "--remote", self.remote, "--once", *extra,
                        ok=ok)

    def start(self, *extra: str) -> SyncClient:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(
            [str(BIN), "--server", self.url, "sync", str(self.root), "--remote", self.remote,
             "--verbose", *extra],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        log.close()
        return self

    def kill(self) -> None:
        """SIGKILL: what a crash, an OOM kill or a power cut looks like to the sync state."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tree(self) -> dict[str, bytes | None]:
        return local_tree(self.root)

    def write(self, rel: str, data: bytes) -> Path:
        path = self.root / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path


class ServerView:
    """Reads the account's tree straight from the API, to compare with the local folders."""

    def __init__(self, url: str, username: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)
        r = self.http.post("/api/v1/auth/login", json={"username": username,
                                                       "password": PASSWORD})
        r.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def close(self) -> None:
        self.http.close()

    def entries(self, folder: str = "/") -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"path": folder, "recursive": "true"}
            if cursor:
                params["cursor"] = cursor
            page = self.http.get("/api/v1/files/list", params=params)
            page.raise_for_status()
            body = page.json()
            out += body["entries"]
            cursor = body.get("cursor")
            if not cursor:
                return out

    def tree(self) -> dict[str, str | None]:
        """path -> content hash (None for folders)."""
        return {e["path"]: e["content_hash"] for e in self.entries()}

    def versions(self, path: str) -> list[dict[str, Any]]:
        r = self.http.get("/api/v1/files/versions", params={"path": path})
        r.raise_for_status()
        versions: list[dict[str, Any]] = r.json()["versions"]
        return versions


def as_hashes(tree: dict[str, bytes | None]) -> dict[str, str | None]:
    return {p: (digest(v) if v is not None else None) for p, v in tree.items()}


def signup(url: str, username: str | None = None) -> str:
    """Create an account (a fresh name unless one is given) and return its name."""
    username = username or "u" + uuid.uuid4().hex[:10]
    r = httpx.post(url + "/api/v1/auth/signup", json={"username": username,
                                                      "password": PASSWORD}, timeout=30)
    assert r.status_code == 201, r.text
    return username


@contextlib.contextmanager
def two_devices(url: str, tmp: Path, account: str, names: tuple[str, str] = ("laptop", "desktop")
                ) -> Iterator[tuple[SyncClient, SyncClient]]:
    """Two sync clients of one account; stopped after, each printing its log (pytest shows
    it when the test failed)."""
    a = SyncClient(url, tmp, names[0], account)
    b = SyncClient(url, tmp, names[1], account)
    try:
        yield a, b
    finally:
        for client in (a, b):
            client.stop()
            print(f"--- sync log of {client.device} ---\n{client.log()}")
