"""Downloads land whole or not at all, and never outside their target, against a fake API."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from minidropbox.client.download import BlockReader, DownloadMismatch, download_file
from minidropbox.client.localpaths import TMP_PREFIX, UnsafeName
from minidropbox.client.plans import plan_get
from minidropbox.client.remote import Remote
from minidropbox.client.values import Entry
from minidropbox.core.chunking import chunk_bytes, content_hash, iter_chunks
from tests.unit.mock_remote import mock_remote

DATA = random.Random(11).randbytes(300_000)
MTIME = 1_600_000_000.5


def _entry(path: str, kind: str = "file", data: bytes = DATA) -> dict[str, Any]:
    return {"path": path, "name": path.rsplit("/", 1)[1], "type": kind,
            "size": len(data) if kind == "file" else None,
            "version": 1 if kind == "file" else None, "modified": MTIME,
            "content_hash": content_hash(ref.hash for ref, _ in chunk_bytes(data))
            if kind == "file" else None}


def _client(handler: Any) -> Remote:
    return mock_remote(handler)


def _serving(body: bytes, etag: str) -> Remote:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/files/content"
        assert request.url.params["version"] == "1"  # pinned to the entry's version
        return httpx.Response(200, content=body, headers={"ETag": f'"{etag}"'})
    return _client(handler)


def test_download_renames_into_place_with_mtime(tmp_path: Path) -> None:
    entry = _entry("/a.bin")
    target = tmp_path / "out" / "a.bin"
    download_file(_serving(DATA, entry["content_hash"]), "/a.bin", target,
                  entry=Entry.from_json(entry))
    assert target.read_bytes() == DATA
    assert target.stat().st_mtime == pytest.approx(MTIME)
    assert [p.name for p in target.parent.iterdir()] == ["a.bin"]


@pytest.mark.parametrize("body", [DATA[:-1], DATA[:-1] + bytes([DATA[-1] ^ 1])])
def test_bad_bytes_leave_the_old_file_alone(tmp_path: Path, body: bytes) -> None:
    entry = _entry("/a.bin")
    target = tmp_path / "a.bin"
    target.write_bytes(b"previous")
    with pytest.raises(DownloadMismatch):
        download_file(_serving(body, entry["content_hash"]), "/a.bin", target,
                      entry=Entry.from_json(entry))
    assert target.read_bytes() == b"previous"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX)]


@pytest.mark.parametrize("evil", ["/Docs/../../evil.txt", "/Docs/a\\..\\..\\evil.txt",
                                  "/Other/evil.txt", "/Docs//evil.txt"])
def test_hostile_listing_is_refused(tmp_path: Path, evil: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/files/metadata":
            return httpx.Response(200, json=_entry("/Docs", "folder"))
        assert request.url.path == "/api/v1/files/list"
        return httpx.Response(200, json={"entries": [_entry("/Docs/ok.txt"), _entry(evil)],
                                         "cursor": None})
    with pytest.raises(UnsafeName):
        plan_get(_client(handler), "/Docs", tmp_path / "dest")
    assert not (tmp_path / "evil.txt").exists()


def test_hostile_file_name_is_refused(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={**_entry("/a.txt"), "name": "../../evil.txt"})
    with pytest.raises(UnsafeName):
        plan_get(_client(handler), "/a.txt", tmp_path)


@pytest.mark.parametrize("seed", range(4))
def test_hashing_while_streaming_matches_cutting_the_whole_file(seed: int) -> None:
    """The download is cut into chunks as it arrives, in blocks of any size; the content
    hash must be the one cutting the whole file gives, or every verified get would fail."""
    rng = random.Random(seed)
    data = rng.randbytes(rng.randrange(0, 12 * 1024 * 1024))
    blocks, i = [], 0
    while i < len(data):
        n = rng.choice([1, 4096, 65536, 1 << 20, 3 << 20])
        blocks.append(data[i:i + n])
        i += n
    reader = BlockReader(iter(blocks), None)
    got = content_hash(ref.hash for ref, _ in iter_chunks(reader))
    assert got == content_hash(ref.hash for ref, _ in chunk_bytes(data))
    assert reader.total == len(data)
