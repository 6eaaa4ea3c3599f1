"""The storage node as a real process on a loopback port: auth, ranges, durability, full disks,
flat memory, and the async client the API uses against it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import signal
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from minidropbox.core.errors import HashMismatch, RangeNotSatisfiable
from minidropbox.node.app import create_node_app, parse_range
from minidropbox.node.settings import NodeSettings
from minidropbox.storage.base import (
    DELETE_BEFORE_HEADER,
    ChunkNotFound,
    CorruptChunk,
    DeleteTooLate,
    StoreFull,
    StoreUnavailable,
)
from minidropbox.storage.disk import DiskChunkStore
from minidropbox.storage.node_client import AsyncNodeClient, NodeClient
from tests.harness import ServerProcess, free_port
from tests.integration.node_process import AUTH, SECRET, running_node

MiB = 1 << 20


def name_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def files_in(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def error_code(r: httpx.Response) -> str:
    body = r.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return str(body["error"]["code"])


def node_dir(node: ServerProcess) -> Path:
    return Path(node.args[node.args.index("--dir") + 1])


# -- authentication -------------------------------------------------------------------------

def _user_jwt() -> str:
    # What a logged-in user holds: even signed with the cluster secret it is not the secret.
    return jwt.encode({"sub": "1", "type": "access", "exp": int(time.time()) + 600}, SECRET,
                      algorithm="HS256")


BAD_AUTH = [
    {},
    {"Authorization": "Bearer wrong"},
    {"Authorization": "Bearer"},
    {"Authorization": f"Bearer {SECRET}x"},
    {"Authorization": f"Bearer {SECRET[:-1]}"},
    {"Authorization": SECRET},
    {"Authorization": f"Basic {base64.b64encode(f'node:{SECRET}'.encode()).decode()}"},
    {"Authorization": f"Token {SECRET}"},
    {"Authorization": f"Bearer {_user_jwt()}"},
    {"X-Cluster-Secret": SECRET},
]


def test_every_route_needs_the_cluster_secret(node: ServerProcess) -> None:
    data = b"secret-protected"
    h = name_of(data)
    routes = [("GET", "/healthz"), ("GET", "/chunks"), ("GET", f"/chunks/{h}"),
              ("HEAD", f"/chunks/{h}"), ("PUT", f"/chunks/{h}"), ("DELETE", f"/chunks/{h}"),
              ("GET", "/metrics"), ("GET", "/no/such/route"), ("POST", "/chunks")]
    with httpx.Client(base_url=node.url, timeout=10) as client:
        for headers in BAD_AUTH:
            for method, path in routes:
                r = client.request(method, path, headers=headers,
                                   content=data if method == "PUT" else None)
                assert r.status_code == 401, (method, path, headers, r.status_code)
                assert SECRET not in r.text and SECRET not in str(r.headers)
                if method != "HEAD":
                    assert error_code(r) == "unauthorized"
        assert client.get("/healthz", headers=AUTH).status_code == 200
        assert client.get("/chunks", headers=AUTH).json() == {"chunks": [], "next": None}
    assert files_in(node_dir(node)) == []


def test_a_node_without_a_configured_secret_keeps_a_generated_one(tmp_path: Path) -> None:
    settings = NodeSettings(dir=tmp_path / "solo")
    app = create_node_app(settings)
    secret = (tmp_path / "solo" / "secrets" / "cluster_secret").read_text().strip()
    assert len(secret) > 32
    assert secret not in repr(settings)

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            assert (await client.get("/healthz")).status_code == 401
            ok = await client.get("/healthz", headers={"Authorization": f"Bearer {secret}"})
            assert ok.status_code == 200 and ok.json()["chunk_count"] == 0

    asyncio.run(scenario())


# -- the HTTP API ---------------------------------------------------------------------------

def test_put_get_head_delete_list(node_http: httpx.Client) -> None:
    data = blob(1, 3 * MiB + 17)
    h = name_of(data)
    r = node_http.put(f"/chunks/{h}", content=data)
    assert r.status_code == 201
    assert node_http.put(f"/chunks/{h}", content=data).status_code == 200
    r = node_http.get(f"/chunks/{h}")
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-length"] == str(len(data))
    head = node_http.head(f"/chunks/{h}")
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
    assert head.content == b""
    health = node_http.get("/healthz").json()
    assert health["status"] == "ok"
    assert (health["chunk_count"], health["used_bytes"]) == (1, len(data))
    assert health["free_bytes"] > 0
    assert node_http.delete(f"/chunks/{h}").status_code == 204
    assert node_http.delete(f"/chunks/{h}").status_code == 204
    assert node_http.head(f"/chunks/{h}").status_code == 404
    r = node_http.get(f"/chunks/{h}")
    assert r.status_code == 404 and error_code(r) == "not_found"


def test_listing_pages(node_http: httpx.Client) -> None:
    names = sorted(name_of(str(i).encode()) for i in range(7))
    for i in range(7):
        node_http.put(f"/chunks/{name_of(str(i).encode())}", content=str(i).encode())
    first = node_http.get("/chunks", params={"limit": 3}).json()
    assert first == {"chunks": names[:3], "next": names[2]}
    second = node_http.get("/chunks", params={"after": first["next"], "limit": 3}).json()
    assert second == {"chunks": names[3:6], "next": names[5]}
    last = node_http.get("/chunks", params={"after": second["next"], "limit": 3}).json()
    assert last == {"chunks": names[6:], "next": None}
    for bad in ["0", "-1", "x", "100000"]:
        r = node_http.get("/chunks", params={"limit": bad})
        assert r.status_code == 400 and error_code(r) == "invalid_input"


def test_bad_requests_get_json_errors(node_http: httpx.Client) -> None:
    for name in ["abc", "A" * 64, "z" * 64]:
        r = node_http.put(f"/chunks/{name}", content=b"x")
        assert r.status_code == 400 and error_code(r) == "invalid_input"
    r = node_http.get("/nope")
    assert r.status_code == 404 and error_code(r) == "not_found"
    r = node_http.post(f"/chunks/{'0' * 64}")
    assert r.status_code == 405 and error_code(r) == "method_not_allowed"


def test_hash_mismatch_is_400_and_leaves_nothing(node: ServerProcess,
                                                 node_http: httpx.Client) -> None:
    data = blob(2, 2 * MiB)
    r = node_http.put(f"/chunks/{name_of(data)}", content=data[:-1] + b"!")
    assert r.status_code == 400 and error_code(r) == "hash_mismatch"
    assert node_http.head(f"/chunks/{name_of(data)}").status_code == 404
    assert files_in(node_dir(node)) == []
    assert node_http.get("/healthz").json()["chunk_count"] == 0


def test_oversized_body_is_413_and_leaves_nothing(node: ServerProcess,
                                                  node_http: httpx.Client) -> None:
    limit = NodeSettings().max_chunk_bytes

    def body() -> Iterator[bytes]:  # no Content-Length: the node must count as it reads
        for _ in range(limit // MiB + 1):
            yield b"\0" * MiB

    r = node_http.put(f"/chunks/{'0' * 64}", content=body())
    assert r.status_code == 413 and error_code(r) == "too_large"
    assert files_in(node_dir(node)) == []


# -- ranges ---------------------------------------------------------------------------------

def test_single_range_requests(node_http: httpx.Client) -> None:
    data = blob(3, 2 * MiB + 100)
    size = len(data)
    h = name_of(data)
    node_http.put(f"/chunks/{h}", content=data)
    cases = {"bytes=0-0": (0, 1), "bytes=10-": (10, size), "bytes=-100": (size - 100, size),
             "bytes=5-99": (5, 100), f"bytes={MiB}-{size + 500}": (MiB, size),
             f"bytes=-{size + 10}": (0, size)}
    for header, (start, stop) in cases.items():
        r = node_http.get(f"/chunks/{h}", headers={"Range": header})
        assert r.status_code == 206, header
        assert r.content == data[start:stop], header
        assert r.headers["content-range"] == f"bytes {start}-{stop - 1}/{size}"
        assert r.headers["content-length"] == str(stop - start)
    for header in [f"bytes={size}-", f"bytes={size + 5}-{size + 10}", "bytes=-0"]:
        r = node_http.get(f"/chunks/{h}", headers={"Range": header})
        assert r.status_code == 416, header
        assert error_code(r) == "range_not_satisfiable"
        assert r.headers["content-range"] == f"bytes */{size}"
    # Unsupported or malformed ranges are ignored, as RFC 9110 allows: the whole chunk.
    for header in ["bytes=0-1,5-6", "items=0-1", "bytes=9-3", "bytes=a-b"]:
        r = node_http.get(f"/chunks/{h}", headers={"Range": header})
        assert r.status_code == 200 and r.content == data, header


def test_parse_range_rules() -> None:
    assert parse_range(None, 10) is None
    assert parse_range("bytes=2-4", 10) == (2, 5)
    assert parse_range("bytes=-3", 10) == (7, 10)
    assert parse_range("bytes=3-1", 10) is None
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=0-", 0)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=-1", 0)


# -- durability -----------------------------------------------------------------------------

def test_temp_files_are_removed_at_start(tmp_path: Path) -> None:
    data = blob(4, 5000)
    h = name_of(data)
    root = tmp_path / "node"
    folder = root / h[:2] / h[2:4]
    folder.mkdir(parents=True)
    (folder / h).write_bytes(data)
    leftovers = [folder / f".tmp-{h}-dead", root / "00" / "00" / f".tmp-{'0' * 64}-beef"]
    leftovers[1].parent.mkdir(parents=True)
    for path in leftovers:
        path.write_bytes(b"half a chunk")
    with running_node(tmp_path) as server:
        assert not any(p.exists() for p in leftovers)
        health = httpx.get(server.url + "/healthz", headers=AUTH).json()
        assert (health["chunk_count"], health["used_bytes"]) == (1, len(data))
        r = httpx.get(f"{server.url}/chunks/{h}", headers=AUTH)
        assert r.content == data


def test_a_client_that_disconnects_mid_body_leaves_no_chunk(node: ServerProcess,
                                                           node_http: httpx.Client) -> None:
    data = blob(5, 4 * MiB)
    h = name_of(data)
    with socket.create_connection(("127.0.0.1", node.port)) as sock:
        sock.sendall((f"PUT /chunks/{h} HTTP/1.1\r\nHost: node\r\n"
                      f"Authorization: Bearer {SECRET}\r\n"
                      f"Content-Length: {len(data)}\r\n\r\n").encode())
        sock.sendall(data[: 3 * MiB])
        time.sleep(0.3)
        # Mid-body: nothing under the final name, nothing listed.
        assert node_http.head(f"/chunks/{h}").status_code == 404
        assert node_http.get("/chunks").json()["chunks"] == []
        assert not (node_dir(node) / h[:2] / h[2:4] / h).exists()
    deadline = time.monotonic() + 10
    while files_in(node_dir(node)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert files_in(node_dir(node)) == []
    assert node_http.head(f"/chunks/{h}").status_code == 404
    # The node is still fine afterwards.
    assert node_http.put(f"/chunks/{h}", content=data).status_code == 201


def test_a_client_that_leaves_mid_answer_is_not_an_error(node: ServerProcess,
                                                        node_http: httpx.Client) -> None:
    """A reader that goes away mid-chunk (as the API does with a hedged read another holder
    answered first) ends that answer; the node logs no error and serves on."""
    data = blob(9, 8 * MiB)
    h = name_of(data)
    assert node_http.put(f"/chunks/{h}", content=data).status_code == 201
    for _ in range(3):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the node must wait
            sock.connect(("127.0.0.1", node.port))
            sock.sendall(f"GET /chunks/{h} HTTP/1.1\r\nHost: node\r\n"
                         f"Authorization: Bearer {SECRET}\r\n\r\n".encode())
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            time.sleep(0.2)
    time.sleep(0.3)
    assert node_http.get(f"/chunks/{h}").content == data
    log = node.log_path.read_text(errors="replace")
    assert "Traceback" not in log and "Exception in ASGI application" not in log


def test_restart_keeps_chunks_and_counts(node: ServerProcess, node_http: httpx.Client) -> None:
    sizes = [1, 1000, MiB]
    for i, size in enumerate(sizes):
        node_http.put(f"/chunks/{name_of(blob(i, size))}", content=blob(i, size))
    before = node_http.get("/healthz").json()
    node.restart()
    with httpx.Client(base_url=node.url, headers=AUTH) as client:
        after = client.get("/healthz").json()
        assert (after["chunk_count"], after["used_bytes"]) == (3, sum(sizes))
        assert (before["chunk_count"], before["used_bytes"]) == (3, sum(sizes))
        assert client.get(f"/chunks/{name_of(blob(2, MiB))}").content == blob(2, MiB)


def test_full_disk_is_507_and_leaves_nothing(tiny_disk: Path) -> None:
    with running_node(tiny_disk) as server, \
            httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as node_http:
        data = blob(6, 2 * MiB)
        r = node_http.put(f"/chunks/{name_of(data)}", content=data)
        assert r.status_code == 507 and error_code(r) == "store_full"
        assert files_in(tiny_disk / "node") == []
        assert node_http.get("/healthz").json()["chunk_count"] == 0
        # Space freed by the failed write is usable again.
        small = blob(7, 100_000)
        assert node_http.put(f"/chunks/{name_of(small)}", content=small).status_code == 201
        assert node_http.get(f"/chunks/{name_of(small)}").content == small
        with NodeClient(server.url, SECRET) as client, pytest.raises(StoreFull):
            client.put(name_of(data), data)


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_memory_stays_flat_for_big_chunks(node: ServerProcess, node_http: httpx.Client) -> None:
    assert node.proc is not None
    warm = blob(8, 2 * MiB)
    node_http.put(f"/chunks/{name_of(warm)}", content=warm)
    node_http.get(f"/chunks/{name_of(warm)}")
    baseline = _peak_rss(node.proc.pid)
    size = 48 * MiB
    rng = random.Random(9)
    digest = hashlib.sha256()
    pieces = [rng.randbytes(MiB) for _ in range(size // MiB)]
    for piece in pieces:
        digest.update(piece)
    h = digest.hexdigest()
    assert node_http.put(f"/chunks/{h}", content=iter(pieces)).status_code == 201
    got = hashlib.sha256()
    with node_http.stream("GET", f"/chunks/{h}") as r:
        for block in r.iter_bytes():
            got.update(block)
    assert got.hexdigest() == h
    assert _peak_rss(node.proc.pid) - baseline < 24 * MiB


# -- clients --------------------------------------------------------------------------------

def test_async_client_round_trip(node: ServerProcess) -> None:
    data = blob(10, 2 * MiB + 7)
    h = name_of(data)

    async def scenario() -> None:
        async with AsyncNodeClient(node.url, SECRET, timeout=10) as client:
            assert await client.head(h) is None
            await client.put(h, data)
            await client.put(h, data)
            assert await client.head(h) == len(data)
            assert await client.get(h) == data
            assert b"".join([b async for b in client.stream(h)]) == data
            assert b"".join([b async for b in client.stream(h, 100, MiB + 5)]) == data[100:MiB + 5]
            assert b"".join([b async for b in client.stream(h, len(data))]) == b""
            assert await client.list() == [h]
            assert await client.list(after=h) == []
            stats = await client.stat()
            assert stats.chunk_count == 1 and stats.used_bytes == len(data)
            with pytest.raises(HashMismatch):
                await client.put(name_of(b"other"), data)
            await client.delete(h)
            with pytest.raises(ChunkNotFound):
                await client.get(h)
            with pytest.raises(ChunkNotFound):
                [b async for b in client.stream(h)]

    asyncio.run(scenario())


def test_async_client_detects_corruption(node: ServerProcess) -> None:
    data = blob(11, 10_000)
    h = name_of(data)

    async def scenario() -> None:
        async with AsyncNodeClient(node.url, SECRET) as client:
            await client.put(h, data)
            (node_dir(node) / h[:2] / h[2:4] / h).write_bytes(data[::-1])
            with pytest.raises(CorruptChunk):
                await client.get(h)

    asyncio.run(scenario())


def test_concurrent_puts_of_one_chunk_create_it_once(node: ServerProcess) -> None:
    data = blob(12, 3 * MiB)

    async def scenario() -> None:
        async with AsyncNodeClient(node.url, SECRET, timeout=30) as client:
            await asyncio.gather(*(client.put(name_of(data), data) for _ in range(8)))

    asyncio.run(scenario())
    health = httpx.get(node.url + "/healthz", headers=AUTH).json()
    assert (health["chunk_count"], health["used_bytes"]) == (1, len(data))


def test_wrong_secret_or_no_node_is_unavailable(node: ServerProcess) -> None:
    data = b"x"

    async def scenario() -> None:
        async with AsyncNodeClient(node.url, "not-the-secret") as client:
            with pytest.raises(StoreUnavailable, match="cluster secret") as info:
                await client.put(name_of(data), data)
            assert "not-the-secret" not in str(info.value)
        async with AsyncNodeClient(f"http://127.0.0.1:{free_port()}", SECRET) as client:
            with pytest.raises(StoreUnavailable):
                await client.stat()

    asyncio.run(scenario())
    with NodeClient(f"http://127.0.0.1:{free_port()}", SECRET) as sync_client, \
            pytest.raises(StoreUnavailable):
        sync_client.get(name_of(data))


def test_a_hung_node_raises_within_the_timeout(node: ServerProcess) -> None:
    data = blob(13, 4 * MiB)
    h = name_of(data)
    httpx.put(f"{node.url}/chunks/{h}", content=data, headers=AUTH)
    node.signal(signal.SIGSTOP)
    try:
        async def call(op: str) -> float:
            async with AsyncNodeClient(node.url, SECRET, timeout=1.0) as client:
                started = time.monotonic()
                with pytest.raises(StoreUnavailable):
                    if op == "put":
                        await client.put(name_of(data[::-1]), data[::-1])
                    elif op == "get":
                        await client.get(h)
                    elif op == "head":
                        await client.head(h)
                    elif op == "stream":
                        [b async for b in client.stream(h)]
                    else:
                        await client.stat()
                return time.monotonic() - started

        async def scenario() -> list[float]:
            return await asyncio.gather(*(call(op) for op in
                                          ["put", "get", "head", "stream", "health"]))

        assert max(asyncio.run(scenario())) < 2.0
        with NodeClient(node.url, SECRET, timeout=1.0) as client:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                client.stat()
            assert time.monotonic() - started < 2.0
    finally:
        node.signal(signal.SIGCONT)


# -- the disk store itself ------------------------------------------------------------------

def test_disk_store_quarantine(tmp_path: Path) -> None:
    store = DiskChunkStore(tmp_path / "store")
    good, bad = blob(20, 3000), blob(21, 4000)
    store.put(name_of(good), good)
    store.put(name_of(bad), bad)
    target = store.quarantine(name_of(bad))
    assert target.parent == tmp_path / "store" / "quarantine" and target.read_bytes() == bad
    assert not store.has(name_of(bad))
    assert store.list() == [name_of(good)]
    assert (store.stat().chunk_count, store.stat().used_bytes) == (1, len(good))
    with pytest.raises(ChunkNotFound):
        store.quarantine(name_of(bad))
    # A restart recounts from disk and leaves the quarantine alone.
    reopened = DiskChunkStore(tmp_path / "store")
    assert (reopened.stat().chunk_count, reopened.stat().used_bytes) == (1, len(good))
    assert target.exists()


def test_disk_store_put_stream_failure_keeps_nothing(tmp_path: Path) -> None:
    store = DiskChunkStore(tmp_path / "store")
    data = blob(22, 3 * MiB)

    def broken() -> Iterator[bytes]:
        yield data[:MiB]
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        store.put_stream(name_of(data), broken())

    async def broken_async() -> AsyncIterator[bytes]:
        yield data[:2 * MiB]
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        asyncio.run(store.put_stream_async(name_of(data), broken_async()))
    assert files_in(tmp_path / "store") == []
    assert asyncio.run(store.put_stream_async(name_of(data), _aiter([data[:5], data[5:]])))
    assert store.get(name_of(data)) == data


async def _aiter(items: list[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


def test_disk_store_full_disk(tiny_disk: Path) -> None:
    store = DiskChunkStore(tiny_disk / "store")
    data = blob(23, 2 * MiB)
    with pytest.raises(StoreFull):
        store.put(name_of(data), data)
    assert files_in(tiny_disk / "store") == []
    assert store.stat().chunk_count == 0


def test_a_delete_the_caller_gave_up_on_never_happens_later(node: ServerProcess) -> None:
    """A DELETE that reached a paused node and timed out must not be carried out when the
    node wakes: by then its deleter has closed the deletion fence, and a writer may have
    recorded this very copy again (docs/DESIGN.md, "Write ordering")."""
    data = blob(14, 64 * 1024)
    h = name_of(data)
    httpx.put(f"{node.url}/chunks/{h}", content=data, headers=AUTH)
    node.signal(signal.SIGSTOP)
    try:
        async def scenario() -> None:
            async with AsyncNodeClient(node.url, SECRET, timeout=1.0) as client:
                with pytest.raises(StoreUnavailable):
                    await client.delete(h)
        asyncio.run(scenario())
    finally:
        node.signal(signal.SIGCONT)
    time.sleep(1.0)  # the node reads the request it was sent while paused
    assert httpx.get(f"{node.url}/healthz", headers=AUTH).status_code == 200
    assert httpx.get(f"{node.url}/chunks/{h}", headers=AUTH).content == data


def test_a_delete_past_its_deadline_is_refused_and_keeps_the_copy(node: ServerProcess) -> None:
    data = blob(15, 1000)
    h = name_of(data)
    httpx.put(f"{node.url}/chunks/{h}", content=data, headers=AUTH)
    url = f"{node.url}/chunks/{h}"
    late = httpx.delete(url, headers={**AUTH, DELETE_BEFORE_HEADER: f"{time.time() - 5:.3f}"})
    assert (late.status_code, error_code(late)) == (412, "delete_too_late")
    for bad in ("soon", "nan", "inf", ""):
        r = httpx.delete(url, headers={**AUTH, DELETE_BEFORE_HEADER: bad})
        assert (r.status_code, error_code(r)) == (400, "invalid_input"), bad
    assert httpx.get(url, headers=AUTH).content == data

    async def scenario() -> None:
        async with AsyncNodeClient(node.url, SECRET, timeout=5.0) as client:
            with pytest.raises(DeleteTooLate):
                await client.delete(h, before=time.time() - 1)
            assert await client.head(h) == len(data)
            await client.delete(h, before=time.time() + 30)
            assert await client.head(h) is None
        # A node that cannot be reached never got the request: no deadline to wait out.
        async with AsyncNodeClient(f"http://127.0.0.1:{free_port()}", SECRET,
                                   timeout=5.0) as client:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await client.delete(h, before=time.time() + 30)
            assert time.monotonic() - started < 2.5
    asyncio.run(scenario())
