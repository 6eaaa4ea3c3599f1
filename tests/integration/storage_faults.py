"""Helpers for the resilience tests: uploads, an admin session, on-disk replica checks."""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from minidropbox.core.chunking import chunk_bytes
from tests.conftest import bearer, signup_and_login
from tests.harness import BIN, TestCluster

MiB = 1024 * 1024
T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float, what: str, every: float = 0.2) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} "
                                 f"(last: {last!r})")
        time.sleep(every)
        last = check()
    return last


def upload(client: httpx.Client, auth: dict[str, str], path: str,
           data: bytes) -> httpx.Response:
    """missing → PUT each missing chunk → commit; the first failing answer is returned."""
    pieces = chunk_bytes(data)
    hashes = [ref.hash for ref, _ in pieces]
    r = client.post("/api/v1/chunks/missing", headers=auth, json={"hashes": hashes})
    if r.status_code != 200:
        return r
    want = set(r.json()["missing"])
    for ref, piece in pieces:
        if ref.hash in want:
            r = client.put(f"/api/v1/chunks/{ref.hash}", headers=auth, content=piece)
            if r.status_code != 201:
                return r
            want.discard(ref.hash)
    return client.post("/api/v1/files/commit", headers=auth, json={
        "path": path, "size": len(data), "chunks": hashes, "parent_version": None})


def download(client: httpx.Client, auth: dict[str, str], path: str) -> bytes:
    r = client.get("/api/v1/files/content", headers=auth, params={"path": path})
    assert r.status_code == 200, r.text
    return r.content


def hashes_of(data: bytes) -> list[str]:
    return [ref.hash for ref, _ in chunk_bytes(data)]


def intact_copies(cluster: TestCluster, nodes: list[str] | None = None) -> Counter[str]:
    """How many intact (re-hashed) copies of each chunk the nodes hold on disk."""
    counts: Counter[str] = Counter()
    for node in cluster.nodes:
        if nodes is not None and node.name not in nodes:
            continue
        for path in cluster.chunk_files(node.name):
            if hashlib.sha256(path.read_bytes()).hexdigest() == path.name:
                counts[path.name] += 1
    return counts


def chunk_file(cluster: TestCluster, node: str, chunk_hash: str) -> Path:
    return cluster.node_dir(node) / chunk_hash[:2] / chunk_hash[2:4] / chunk_hash


def flip_bit(path: Path, offset: int = 1000) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x10
    path.write_bytes(bytes(data))


def make_admin(cluster: TestCluster, client: httpx.Client, name: str = "admin") -> dict[str, str]:
    """Sign a user up, promote them with ``server grant-admin``, log in again."""
    signup_and_login(client, name)
    subprocess.run([str(BIN), "server", "grant-admin", name, "--data",
                    str(cluster.tmp / "api-data")], env=cluster.api.env, check=True,
                   capture_output=True, timeout=60)
    r = client.post("/api/v1/auth/login", json={"username": name,
                                                "password": "correct horse battery"})
    assert r.status_code == 200, r.text
    return bearer(r.json())


def status(client: httpx.Client, admin: dict[str, str]) -> dict[str, Any]:
    r = client.get("/api/v1/admin/status", headers=admin)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def healed(client: httpx.Client, admin: dict[str, str]) -> dict[str, Any] | None:
    """The status once nothing is under-replicated or marked corrupt, else None."""
    body = status(client, admin)
    if body["under_replicated"] == 0 and body["corrupt_replicas"] == 0:
        return body
    return None


def node_state(client: httpx.Client, admin: dict[str, str], name: str) -> str:
    r = client.get("/api/v1/admin/nodes", headers=admin)
    assert r.status_code == 200, r.text
    return str(next(n for n in r.json()["nodes"] if n["name"] == name)["state"])


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """``folder`` on a tmpfs of its own of ``size`` ("1m"); skips the test without root."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                              str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): "
                    f"{mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
