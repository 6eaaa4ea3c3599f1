"""A node whose disk returns I/O errors refuses writes at once and says so in /healthz, and
takes writes again once a test write works (node/disk_faults.py), in-process over a real
directory; ``EIO`` is injected into the store's writer, since no loopback test can make a real
disk fail."""

from __future__ import annotations

import asyncio
import errno
import hashlib
from collections.abc import AsyncIterable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from minidropbox.node.app import create_node_app
from minidropbox.node.settings import NodeSettings

SECRET = "unit-node-secret"
AUTH = {"Authorization": f"Bearer {SECRET}"}
DATA = b"some chunk bytes" * 1000
NAME = hashlib.sha256(DATA).hexdigest()


class SyncAsgiClient:
    """Blocking requests straight into the node's ASGI app (no server, no lifespan)."""

    def __init__(self, app: Starlette, headers: dict[str, str]) -> None:
        self.loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://node",
                                        headers=headers)

    def get(self, url: str) -> httpx.Response:
        return self.loop.run_until_complete(self.client.get(url))

    def put(self, url: str, content: bytes) -> httpx.Response:
        return self.loop.run_until_complete(self.client.put(url, content=content))

    def __enter__(self) -> SyncAsgiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


def test_io_errors_mark_the_disk_faulty_until_a_write_works_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_node_app(NodeSettings(dir=tmp_path / "node", cluster_secret=SECRET,
                                       scrub_rate=0))
    store, disk = app.state.store, app.state.disk
    real_put = store.put_stream_async
    calls = []

    async def failing(name: str, blocks: AsyncIterable[bytes]) -> bool:
        calls.append(name)
        raise OSError(errno.EIO, "Input/output error")

    with SyncAsgiClient(app, AUTH) as client:
        monkeypatch.setattr(store, "put_stream_async", failing)
        r = client.put(f"/chunks/{NAME}", content=DATA)
        assert r.status_code == 503 and r.json()["error"]["code"] == "disk_io_error"
        assert client.get("/healthz").json()["fault"] == "io_error"
        # Refused at once from now on, without touching the disk.
        monkeypatch.setattr(store, "put_stream_async", real_put)
        assert client.put(f"/chunks/{NAME}", content=DATA).status_code == 503
        assert calls == [NAME]
        # Reads still work where the disk allows (nothing stored here: a plain 404).
        assert client.get(f"/chunks/{NAME}").status_code == 404
        # Past the recheck interval a test write succeeds: back in service.
        disk.clock = lambda: 1e12
        assert client.get("/healthz").json()["fault"] is None
        assert client.put(f"/chunks/{NAME}", content=DATA).status_code == 201
        assert client.get(f"/chunks/{NAME}").content == DATA


def test_other_os_errors_are_not_a_disk_fault(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_node_app(NodeSettings(dir=tmp_path / "node", cluster_secret=SECRET,
                                       scrub_rate=0))

    async def failing(name: str, blocks: AsyncIterable[bytes]) -> bool:
        raise OSError(errno.EMFILE, "Too many open files")

    with SyncAsgiClient(app, AUTH) as client:
        monkeypatch.setattr(app.state.store, "put_stream_async", failing)
        assert client.put(f"/chunks/{NAME}", content=DATA).status_code == 500
        assert client.get("/healthz").json()["fault"] is None
