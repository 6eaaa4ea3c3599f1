"""Batching rules, and what an upload costs in requests, against an in-process fake API.

The fake speaks just enough of docs/PROTOCOL.md (missing, PUT chunk, multipart batch, commit,
commit_batch, metadata) through ``httpx.MockTransport``, so these tests count requests and
bytes without starting a server. The real thing is covered in tests/e2e.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from minidropbox.client import upload
from minidropbox.client.batch import (
    BATCH_BYTES,
    LocalError,
    TransferStats,
    UploadItem,
    pack_by_size,
    split_every,
)
from minidropbox.client.remote import Remote
from minidropbox.client.upload import LocalFileChanged, upload_file
from minidropbox.client.upload_many import upload_many
from minidropbox.core import errors
from minidropbox.core.chunking import MAX_CHUNK, chunk_bytes, sha256_hex
from minidropbox.core.chunking import iter_chunks as real_iter_chunks
from tests.unit.mock_remote import mock_remote

PART_RE = re.compile(rb'name="([0-9a-f]{64})"')


def test_split_every() -> None:
    assert [list(p) for p in split_every(list(range(7)), 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(split_every([], 3)) == []


def test_pack_by_size_respects_bytes_and_count() -> None:
    rng = random.Random(7)
    sizes = [rng.randint(1, 2_000_000) for _ in range(500)] + [9_000_000]
    groups = pack_by_size(sizes, lambda n: n, max_bytes=BATCH_BYTES, max_count=50)
    assert [n for g in groups for n in g] == sizes  # order kept, nothing lost
    for group in groups:
        assert len(group) <= 50
        assert sum(group) <= BATCH_BYTES or len(group) == 1
    assert pack_by_size([], lambda n: n) == []


class FakeApi:
    """The upload half of the protocol, in memory, counting every request by route."""

    def __init__(self) -> None:
        self.chunks: dict[str, int] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        self.sent_chunks = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        route = f"{request.method} {path}"
        if path.startswith("/api/v1/chunks/") and request.method == "PUT":
            route = "PUT /api/v1/chunks/{h}"
        self.calls[route] += 1
        if route == "POST /api/v1/chunks/missing":
            hashes = json.loads(request.content)["hashes"]
            assert len(hashes) <= 10_000
            return httpx.Response(200, json={"missing": [h for h in hashes
                                                         if h not in self.chunks]})
        if route == "PUT /api/v1/chunks/{h}":
            h = path.rsplit("/", 1)[1]
            assert sha256_hex(request.content) == h
            self.chunks[h] = len(request.content)
            self.sent_chunks += 1
            return httpx.Response(201, json={"hash": h, "size": len(request.content)})
        if route == "POST /api/v1/chunks/batch":
            body = request.read()
            assert len(body) <= 8 * 1024 * 1024 + 64 * 1024
            names = [m.decode() for m in PART_RE.findall(body)]
            for h in names:
                self.chunks[h] = 1
            self.sent_chunks += len(names)
            return httpx.Response(201, json={"stored": [{"hash": h, "size": 1} for h in names]})
        if route == "POST /api/v1/files/commit":
            return self._commit(json.loads(request.content))
        if route == "POST /api/v1/files/commit_batch":
            commits = json.loads(request.content)["commits"]
            assert len(commits) <= 1000
            results = []
            for commit in commits:
                answer = self._commit(commit)
                body = json.loads(answer.content)
                results.append({"ok": True, "entry": body} if answer.status_code == 201
                               else {"ok": False, "error": body["error"]})
            return httpx.Response(200, json={"results": results})
        if route == "GET /api/v1/files/metadata":
            entry = self.files.get(request.url.params["path"])
            if entry is None:
                return httpx.Response(404, json={"error": {"code": "not_found",
                                                           "message": "No such file."}})
            return httpx.Response(200, json=entry)
        raise AssertionError(f"unexpected {route}")

    def _commit(self, commit: dict[str, Any]) -> httpx.Response:
        for h in commit["chunks"]:
            if h not in self.chunks:
                return httpx.Response(400, json={"error": {"code": "missing_chunk",
                                                           "message": h}})
        current = self.files.get(commit["path"])
        current_version = current["version"] if current else None
        if commit["parent_version"] != current_version:
            return httpx.Response(409, json={"error": {
                "code": "version_conflict", "message": "changed",
                "current_version": current_version}})
        entry = {"path": commit["path"], "name": commit["path"].rsplit("/", 1)[1],
                 "type": "file", "size": commit["size"],
                 "version": (current_version or 0) + 1, "modified": commit.get("mtime"),
                 "content_hash": None}
        self.files[commit["path"]] = entry
        return httpx.Response(201, json=entry)


@pytest.fixture
def fake() -> FakeApi:
    return FakeApi()


@pytest.fixture
def api(fake: FakeApi) -> Remote:
    return mock_remote(fake.handle)


def test_second_upload_sends_nothing(api: Remote, fake: FakeApi, tmp_path: Path) -> None:
    data = random.Random(1).randbytes(6 * 1024 * 1024)
    local = tmp_path / "big.bin"
    local.write_bytes(data)
    first = TransferStats()
    entry = upload_file(api, local, "/big.bin", stats=first)
    assert entry.version == 1 and entry.size == len(data)
    assert first.chunks_sent == first.chunks_total == len(chunk_bytes(data)) > 1
    assert first.bytes_sent == len(data)
    second = TransferStats()
    entry = upload_file(api, local, "/big.bin", parent_version="auto", stats=second)
    assert entry.version == 2
    assert second.chunks_sent == 0 and second.bytes_sent == 0
    assert second.chunks_skipped == second.chunks_total


def test_repeated_chunks_are_sent_once(api: Remote, fake: FakeApi, tmp_path: Path) -> None:
    local = tmp_path / "zeros.bin"
    local.write_bytes(bytes(4 * MAX_CHUNK))  # no cut point in zeros: four equal max chunks
    stats = TransferStats()
    upload_file(api, local, "/zeros.bin", stats=stats)
    assert stats.chunks_total == 4 and stats.chunks_sent == 1 and stats.chunks_skipped == 3
    assert stats.bytes_sent == MAX_CHUNK


def test_many_small_files_cost_few_requests(api: Remote, fake: FakeApi,
                                            tmp_path: Path) -> None:
    rng = random.Random(3)
    items = []
    for i in range(2500):
        local = tmp_path / f"f{i:05}.txt"
        local.write_bytes(rng.randbytes(rng.randint(0, 3000)))
        items.append((local, f"/many/f{i:05}.txt"))
    result = upload_many(api, items)
    assert not result.failures
    assert len(result.entries) == 2500 == len(fake.files)
    assert sum(fake.calls.values()) <= 12, fake.calls
    assert fake.calls["POST /api/v1/files/commit_batch"] == 3
    assert fake.calls["PUT /api/v1/chunks/{h}"] == 0
    assert result.stats.requests == sum(fake.calls.values())

    # Again, on top of what is there: nothing sent, each file a second version.
    fake.calls.clear()
    again = upload_many(api, items)
    assert not again.failures and again.stats.chunks_sent == 0
    assert {e.version for e in again.entries} == {2}
    assert fake.calls["POST /api/v1/chunks/batch"] == 0
    assert sum(fake.calls.values()) <= 10, fake.calls


def test_one_bad_file_does_not_stop_the_others(api: Remote, fake: FakeApi,
                                               tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_bytes(b"fine")
    stale = tmp_path / "stale.txt"
    stale.write_bytes(b"old")
    upload_many(api, [(stale, "/stale.txt")])
    stale.write_bytes(b"new")
    result = upload_many(api, [
        UploadItem(tmp_path / "nope.txt", "/nope.txt"),
        UploadItem(stale, "/stale.txt", parent_version=None),  # strict: must be new
        UploadItem(good, "/good.txt"),
    ])
    assert [e.path for e in result.entries] == ["/good.txt"]
    kinds = {f.remote_path: type(f.error) for f in result.failures}
    assert kinds == {"/nope.txt": LocalError, "/stale.txt": errors.VersionConflict}
    assert result.exit_code == 1  # the first failure's: a local error


def _growing_chunks(path: Path, times: int) -> Any:
    """``iter_chunks`` that appends to ``path`` while reading it, the first ``times`` calls."""
    calls = {"n": 0}

    def chunks(fh: Any) -> Any:
        calls["n"] += 1
        for i, item in enumerate(real_iter_chunks(fh)):
            if i == 0 and calls["n"] <= times:
                with open(path, "ab") as writer:
                    writer.write(b"more")
            yield item
    return chunks


def test_a_file_that_settles_is_uploaded_as_it_ends(api: Remote, fake: FakeApi,
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    local = tmp_path / "log.txt"
    local.write_bytes(random.Random(5).randbytes(3 * 1024 * 1024))
    monkeypatch.setattr(upload, "iter_chunks", _growing_chunks(local, times=1))
    entry = upload_file(api, local, "/log.txt")
    assert entry.size == local.stat().st_size == 3 * 1024 * 1024 + 4


def test_a_file_that_keeps_changing_fails_clearly(api: Remote, fake: FakeApi,
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    local = tmp_path / "log.txt"
    local.write_bytes(random.Random(6).randbytes(3 * 1024 * 1024))
    monkeypatch.setattr(upload, "iter_chunks", _growing_chunks(local, times=99))
    with pytest.raises(LocalFileChanged, match="changed while it was being read"):
        upload_file(api, local, "/log.txt")
    assert "/log.txt" not in fake.files
