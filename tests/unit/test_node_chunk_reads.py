"""Whole-chunk GETs answered before the node's router (node/chunk_reads.py): the same answer
and metrics as the route's, and everything else — ranges, grants, missing chunks, disk
faults — left to the route."""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path
from typing import BinaryIO

import pytest

from minidropbox.node.app import NodeRoutes, create_node_app
from minidropbox.node.settings import NodeSettings
from minidropbox.storage.disk import DiskChunkStore
from tests.unit.test_node_disk_faults import SyncAsgiClient

SECRET = "chunk-reads-cluster-secret-0123456789"
AUTH = {"Authorization": f"Bearer {SECRET}"}
DATA = bytes(range(256)) * 4096
NAME = hashlib.sha256(DATA).hexdigest()


def test_a_whole_chunk_is_answered_without_the_route_and_counted_as_the_route_s(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_node_app(NodeSettings(dir=tmp_path / "node", cluster_secret=SECRET,
                                       scrub_rate=0))
    with SyncAsgiClient(app, AUTH) as client:
        assert client.put(f"/chunks/{NAME}", content=DATA).status_code == 201

        async def not_here(*_: object) -> None:
            raise AssertionError("the route answered")

        monkeypatch.setattr(NodeRoutes, "_get", not_here)
        r = client.get(f"/chunks/{NAME}")
        assert r.status_code == 200 and r.content == DATA
        assert r.headers["content-length"] == str(len(DATA))
        assert r.headers["accept-ranges"] == "bytes"
        monkeypatch.undo()
        ranged = client.loop.run_until_complete(client.client.get(
            f"/chunks/{NAME}", headers={"Range": "bytes=0-9"}))
        assert ranged.status_code == 206 and ranged.content == DATA[:10]
        missing = client.get(f"/chunks/{'0' * 64}")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        granted = client.loop.run_until_complete(client.client.get(
            f"/chunks/{NAME}", headers={"Authorization": "Grant not-a-grant"}))
        assert granted.status_code == 403  # the route checked the grant
        text = client.get("/metrics").text
    route = '{method="GET",route="/chunks/{name}",status='
    assert f'minidropbox_node_http_requests_total{route}"200"}} 1.0' in text
    assert f'minidropbox_node_http_requests_total{route}"206"}} 1.0' in text
    assert f'minidropbox_node_http_requests_total{route}"404"}} 1.0' in text
    assert "minidropbox_node_chunk_reads_total 2.0" in text


def test_a_disk_fault_on_open_is_the_route_s_503(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_node_app(NodeSettings(dir=tmp_path / "node", cluster_secret=SECRET,
                                       scrub_rate=0))
    with SyncAsgiClient(app, AUTH) as client:
        assert client.put(f"/chunks/{NAME}", content=DATA).status_code == 201

        def failing(self: DiskChunkStore, name: str) -> BinaryIO:
            raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr(DiskChunkStore, "open", failing)
        r = client.get(f"/chunks/{NAME}")
        assert r.status_code == 503 and r.json()["error"]["code"] == "disk_io_error"
        assert client.get("/healthz").json()["fault"] == "io_error"
