"""Downloads through /dav/ read chunks straight into reused buffers (storage/node_fetch.py):
every byte is still verified against its chunk's name, whole files and ranges alike."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest

from minidropbox.core.chunking import chunk_bytes
from tests.dav.conftest import MiB, new_dav_user
from tests.harness import TestCluster
from tests.integration.storage_faults import chunk_file, flip_bit


def test_corrupt_chunks_are_never_served(tmp_path: Path) -> None:
    cluster = TestCluster(tmp_path, nodes=2, replicas=2)
    try:
        user = new_dav_user(cluster.url)
        data = random.Random(5).randbytes(6 * MiB + 11)
        with user.client() as dav:
            assert dav.put("/dav/f.bin", content=data).status_code == 201
            for _ in range(3):  # the same buffers, used again, give the same bytes
                r = dav.get("/dav/f.bin")
                assert r.status_code == 200 and r.content == data
            ref = chunk_bytes(data)[1][0]  # the second chunk: its range starts past byte 0
            target, offset = ref.hash, ref.offset + 100
            # One copy bad: whichever is read first, the intact bytes come back.
            flip_bit(chunk_file(cluster, "node-1", target))
            assert dav.get("/dav/f.bin").content == data
            r = dav.get("/dav/f.bin", headers={"Range": f"bytes={offset}-{offset + 99}"})
            assert r.status_code == 206 and r.content == data[offset:offset + 100]
            # Every copy bad: never the corrupt bytes, whole file or range.
            flip_bit(chunk_file(cluster, "node-2", target))
            r = dav.get("/dav/f.bin", headers={"Range": f"bytes={offset}-{offset + 99}"})
            assert r.status_code == 500 and data[offset:offset + 100] not in r.content
            # A whole file starts with the intact first chunk, then stops short of the bad one.
            with pytest.raises(httpx.RemoteProtocolError):
                dav.get("/dav/f.bin")
        assert [f.name for f in cluster.check().must_violations] == ["version_chunks"]
        cluster.expected_broken.add("version_chunks")
    finally:
        cluster.stop()

