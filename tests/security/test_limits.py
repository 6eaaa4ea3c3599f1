"""Unrestricted resource consumption (OWASP API4): every body, list, page, account and client
is capped, and slow clients cannot hold the server (slowloris)."""

from __future__ import annotations

import hashlib
import os
import select
import socket
import time
from collections.abc import Iterator

import httpx

from tests.harness import ServerProcess, TestCluster
from tests.security.conftest import (
    EDGE_BODY_WINDOW,
    EDGE_HEAD_TIMEOUT,
    EDGE_RATE,
    PAGE_SIZE,
    QUOTA,
    MiB,
    new_user,
)

SLACK = 2.5  # seconds on top of a deadline before a test calls the server too slow


def _stream(data: bytes, piece: int = 256 * 1024) -> Iterator[bytes]:
    """A body without Content-Length (chunked): only counting can stop it."""
    for i in range(0, len(data), piece):
        yield data[i : i + piece]


def test_json_and_chunk_bodies_are_capped(client: httpx.Client) -> None:
    user = new_user(client, "caps")
    big_json = b'{"hashes": ["' + b"a" * (4 * MiB + 10) + b'"]}'
    for body in (big_json, _stream(big_json)):
        r = client.post("/api/v1/chunks/missing", headers={**user.auth,
                        "content-type": "application/json"}, content=body)
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large", r.text
    chunk = os.urandom(8 * MiB + 1)
    name = "0" * 64
    for body in (chunk, _stream(chunk)):  # declared, then only counted
        r = client.put(f"/api/v1/chunks/{name}", headers=user.auth, content=body)
        assert r.status_code == 413, r.text
    r = client.post("/api/v1/chunks/batch", headers=user.auth,
                    files=[(name, (name, chunk, "application/octet-stream"))])
    assert r.status_code == 413, r.text
    # Lists inside bodies are capped too.
    r = client.post("/api/v1/chunks/missing", headers=user.auth,
                    json={"hashes": ["0" * 64] * 10_001})
    assert r.status_code == 422
    commit = {"path": "/x", "size": 0, "chunks": [], "parent_version": None}
    r = client.post("/api/v1/files/commit_batch", headers=user.auth,
                    json={"commits": [commit] * 1001})
    assert r.status_code == 422
    assert client.get("/api/v1/auth/me", headers=user.auth).status_code == 200


def test_pages_are_capped(client: httpx.Client) -> None:
    user = new_user(client, "pages")
    for i in range(PAGE_SIZE + 10):
        assert client.post("/api/v1/files/folder", headers=user.auth,
                           json={"path": f"/many/f{i:03}"}).status_code == 201
    for params in ({"path": "/many", "limit": 100_000}, {"path": "/many"},
                   {"path": "/", "recursive": "true", "limit": 10**9}):
        page = client.get("/api/v1/files/list", headers=user.auth, params=params).json()
        assert len(page["entries"]) == PAGE_SIZE and page["cursor"], params
    for limit in (0, -1):
        r = client.get("/api/v1/files/list", headers=user.auth, params={"limit": limit})
        assert r.status_code == 422
    assert client.delete("/api/v1/files", headers=user.auth,
                         params={"path": "/many"}).status_code == 200
    trash = client.get("/api/v1/trash", headers=user.auth, params={"limit": 100_000}).json()
    assert len(trash["entries"]) == PAGE_SIZE
    changes = client.get("/api/v1/changes", headers=user.auth).json()
    assert changes["entries"] == []  # no cursor: only where the journal is now


def test_quota_is_enforced_on_every_upload_path(client: httpx.Client) -> None:
    user = new_user(client, "quota")
    first = os.urandom(QUOTA - MiB)
    h = hashlib.sha256(first).hexdigest()
    assert client.put(f"/api/v1/chunks/{h}", headers=user.auth, content=first).status_code == 201
    more = os.urandom(2 * MiB)
    h2 = hashlib.sha256(more).hexdigest()
    r = client.put(f"/api/v1/chunks/{h2}", headers=user.auth, content=more)
    assert r.status_code == 507 and r.json()["error"]["code"] == "quota_exceeded", r.text
    r = client.post("/api/v1/chunks/batch", headers=user.auth,
                    files=[(h2, (h2, more, "application/octet-stream"))])
    assert r.status_code == 507, r.text
    r = client.put("/api/v1/files/content", headers=user.auth, params={"path": "/more"},
                   content=more)
    assert r.status_code == 507, r.text
    r = client.put("/api/v1/files/content", headers=user.auth, params={"path": "/more"},
                   content=_stream(more))
    assert r.status_code == 507, r.text
    # What fits is still accepted, and the space already used is what counts.
    r = client.post("/api/v1/files/commit", headers=user.auth, json={
        "path": "/first", "size": len(first), "chunks": [h], "parent_version": None})
    assert r.status_code == 201
    assert client.post("/api/v1/chunks/missing", headers=user.auth,
                       json={"hashes": [h2]}).json()["missing"] == [h2]


def test_request_rate_per_user(edge_api: ServerProcess) -> None:
    with httpx.Client(base_url=edge_api.url, timeout=30) as c:
        user, other = new_user(c, "rate"), new_user(c, "rate")
        codes = [c.get("/api/v1/auth/me", headers=user.auth).status_code
                 for _ in range(EDGE_RATE)]
        assert codes == [200] * EDGE_RATE
        r = c.get("/api/v1/auth/me", headers=user.auth)
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_requests"
        assert 1 <= int(r.headers["retry-after"]) <= 60
        # One user's flood does not lock anyone else out.
        assert c.get("/api/v1/auth/me", headers=other.auth).status_code == 200


def _closed(sock: socket.socket) -> bool:
    """True once the server has closed this connection (anything it sent is drained)."""
    try:
        while select.select([sock], [], [], 0)[0]:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    return False


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_slow_heads_cannot_hold_the_server(edge_api: ServerProcess) -> None:
    assert edge_api.proc is not None
    rss_before = _rss_mib(edge_api.proc.pid)
    idle = [socket.create_connection(("127.0.0.1", edge_api.port)) for _ in range(20)]
    slow = [socket.create_connection(("127.0.0.1", edge_api.port)) for _ in range(40)]
    for s in slow:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    start = time.monotonic()
    closed: dict[int, float] = {}
    worst = 0.0
    try:
        while time.monotonic() - start < EDGE_HEAD_TIMEOUT + SLACK and \
                len(closed) < len(idle) + len(slow):
            for i, s in enumerate(idle + slow):
                if i in closed:
                    continue
                if _closed(s):
                    closed[i] = time.monotonic() - start
                elif s in slow:
                    try:
                        s.send(b"a")  # one more byte of header: never a whole head
                    except OSError:
                        closed[i] = time.monotonic() - start
            t0 = time.monotonic()
            assert httpx.get(edge_api.url + "/healthz", timeout=5).status_code == 200
            worst = max(worst, time.monotonic() - t0)
            time.sleep(0.2)
    finally:
        for s in idle + slow:
            s.close()
    assert len(closed) == len(idle) + len(slow), \
        f"{len(idle) + len(slow) - len(closed)} slow connections still open"
    assert min(closed.values()) >= EDGE_HEAD_TIMEOUT * 0.8  # the deadline, not an accident
    assert worst < 1.0, f"a normal request took {worst:.2f} s beside the slow ones"
    assert _rss_mib(edge_api.proc.pid) - rss_before < 40


def test_slow_body_is_cut_off(edge_api: ServerProcess) -> None:
    s = socket.create_connection(("127.0.0.1", edge_api.port))
    try:
        s.sendall(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n")
        start = time.monotonic()
        answer = b""
        while time.monotonic() - start < EDGE_BODY_WINDOW * 2 + SLACK:
            if select.select([s], [], [], 0.05)[0]:
                piece = s.recv(65536)
                if not piece:
                    break
                answer += piece
            else:
                try:
                    s.send(b" ")  # one byte of body at a time
                except OSError:
                    break
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b'"code":"timeout"' in answer.replace(b" ", b"")
        assert _closed(s) or not answer.endswith(b"\r\n\r\n")
    finally:
        s.close()
    # An ordinary body on the same server is not affected.
    r = httpx.post(edge_api.url + "/api/v1/auth/login", timeout=10,
                   json={"username": "nobody", "password": "x" * 12})
    assert r.status_code == 401


def test_huge_heads_are_refused(edge_api: ServerProcess) -> None:
    s = socket.create_connection(("127.0.0.1", edge_api.port))
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (200 * 1024))
        s.settimeout(5)
        answer = s.recv(65536)
        assert answer.startswith(b"HTTP/1.1 431") or answer == b"", answer[:100]
    except (ConnectionResetError, BrokenPipeError):
        pass  # closed while we were still sending: refused just the same
    finally:
        s.close()
    # A request line past the HTTP parser's limit: still the API's JSON error body.
    s = socket.create_connection(("127.0.0.1", edge_api.port))
    try:
        s.sendall(b"GET /healthz?x=" + b"a" * (70 * 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        answer = b""
        while piece := s.recv(65536):
            answer += piece
    finally:
        s.close()
    assert answer.startswith(b"HTTP/1.1 400") and b"application/json" in answer, answer[:200]
    assert answer.endswith(b'"code": "invalid_input", "message": "Invalid HTTP request '
                           b'received."}}')
    assert httpx.get(edge_api.url + "/healthz", timeout=5).status_code == 200


def test_memory_stays_bounded_under_junk(sec_cluster: TestCluster) -> None:
    """Hundreds of rejected oversized bodies and malformed requests leave RSS where it was."""
    api = sec_cluster.api
    assert api.proc is not None
    junk = b'{"hashes": [' + b'"x",' * (1024 * 1024) + b'"x"]}'  # 4 MiB of JSON list
    with httpx.Client(base_url=api.url, timeout=60) as c:
        user = new_user(c, "junk")
        for _ in range(3):  # warm up allocator pools before measuring
            c.post("/api/v1/chunks/missing", headers=user.auth, content=junk[: 3 * MiB])
        before = _rss_mib(api.proc.pid)
        for i in range(40):
            body = junk if i % 2 else _stream(junk + b" " * MiB)
            r = c.post("/api/v1/chunks/missing", headers={**user.auth,
                       "content-type": "application/json"}, content=body)
            assert r.status_code in (413, 422), r.text
        after = _rss_mib(api.proc.pid)
    assert after - before < 60, f"RSS grew from {before:.0f} to {after:.0f} MiB"
