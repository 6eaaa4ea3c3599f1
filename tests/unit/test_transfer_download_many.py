"""Many small files in one request (``fetch_small_to_temp``, ``POST /files/contents``), and
the sync executor's use of it, against the in-memory server."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from minidropbox.client import localfolder
from minidropbox.client.download import (
    BATCH_BYTES,
    BATCH_FILES,
    DownloadMismatch,
    Wanted,
    fetch_small_to_temp,
    small_batches,
)
from minidropbox.client.fakefolder import FakeFolder, FaultyFolder
from minidropbox.client.localfolder import RealFolder
from minidropbox.core import errors
from minidropbox.core.chunking import chunk_bytes, content_hash
from tests.unit.fake_server import Answer, Call, FakeServer
from tests.unit.test_sync_folder_faults import engine_for


def digest(data: bytes) -> str:
    return content_hash(ref.hash for ref, _ in chunk_bytes(data))


def test_each_file_lands_verified_in_its_own_temp_file() -> None:
    server = FakeServer()
    files = {f"/d/f{i}.txt": f"file {i}\n".encode() * i for i in range(5)}
    for path, data in files.items():
        server.put_file(path, data, mtime=1_600_000_000.0 + len(data))
    server.put_file("/d/f1.txt", b"changed since the listing")
    folder = FakeFolder()
    folder.makedirs("tmp")
    wanted = [Wanted(p, 1, len(d), digest(d), 1_500_000_000.0) for p, d in files.items()]
    wanted[1] = Wanted("/d/f1.txt", 2, 10, digest(b"not these bytes"))
    wanted.append(Wanted("/d/gone.txt", 1, 3, digest(b"abc")))
    got = fetch_small_to_temp(server.remote(), wanted, folder, "tmp")
    assert server.requests.count("POST /files/contents") == 1
    assert isinstance(got[1], DownloadMismatch)
    assert isinstance(got[-1], errors.NotFound)
    for i in (0, 2, 3, 4):
        tmp = got[i]
        assert isinstance(tmp, str) and tmp.startswith("tmp/")
        assert folder.read(tmp) == files[f"/d/f{i}.txt"]
        assert folder.info(tmp).mtime_ns == 1_500_000_000 * 10**9
    assert len([n for n in folder.tree() if n.startswith("tmp/")]) == 4


def test_a_real_folder_writes_a_batch_of_temp_files_then_fsyncs_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``RealFolder.write_temps``: every file new, with its bytes and mtime; all written
    before the first fsync (whose journal commit then takes the others' data along), each
    fsynced, at most ``OPEN_AT_ONCE`` open at a time; a file whose fsync fails is reported
    and removed."""
    events: list[str] = []
    real_write, real_fsync = os.write, os.fsync
    failing: list[int] = []

    def write(fd: int, data: Any) -> int:
        events.append("write")
        return real_write(fd, data)

    def fsync(fd: int) -> None:
        events.append("fsync")
        real_fsync(fd)
        if len([e for e in events if e == "fsync"]) == 3:
            failing.append(fd)
            raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(localfolder, "OPEN_AT_ONCE", 8)
    monkeypatch.setattr(localfolder.os, "write", write)
    monkeypatch.setattr(localfolder.os, "fsync", fsync)
    (tmp_path / "tmp").mkdir()
    folder = RealFolder(tmp_path)
    contents = [(f"file {i}\n".encode() * (i + 1), 1_500_000_000 * 10**9 + i)
                for i in range(20)]
    names = folder.write_temps("tmp", contents)
    assert events == (["write"] * 8 + ["fsync"] * 8) * 2 + ["write"] * 4 + ["fsync"] * 4
    assert isinstance(names[2], OSError) and names[2].errno == errno.EIO
    assert len({n for n in names if isinstance(n, str)}) == 19
    for name, (data, mtime_ns) in zip(names, contents, strict=True):
        if isinstance(name, str):
            assert name.startswith("tmp/.")
            assert (tmp_path / name).read_bytes() == data
            assert os.stat(tmp_path / name).st_mtime_ns == mtime_ns
    assert len(list((tmp_path / "tmp").iterdir())) == 19  # the failed one is gone


def test_a_real_folder_reports_each_temp_file_it_could_not_write(tmp_path: Path) -> None:
    """A batch into a folder that is gone: each file fails with its error, nothing is left."""
    folder = RealFolder(tmp_path)
    got = folder.write_temps("missing", [(b"a", 0), (b"b", 0)])
    assert all(isinstance(g, FileNotFoundError) for g in got) and len(got) == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("op", ["create_temp", "open_write", "set_mtime"])
def test_a_file_that_cannot_be_written_fails_alone(op: str) -> None:
    """A full disk on one file of a batch fails that file; the others are written."""
    server = FakeServer()
    files = {f"/d/f{i}.txt": f"file {i}\n".encode() for i in range(3)}
    for path, data in files.items():
        server.put_file(path, data)
    fake = FakeFolder()
    fake.makedirs("tmp")
    folder = FaultyFolder(fake)
    folder.fail_next(op, errno.ENOSPC)
    wanted = [Wanted(p, 1, len(d), digest(d)) for p, d in files.items()]
    got = fetch_small_to_temp(server.remote(), wanted, folder, "tmp")
    assert isinstance(got[0], OSError) and got[0].errno == errno.ENOSPC
    assert all(isinstance(g, str) for g in got[1:])
    assert sorted(n for n in fake.tree() if n.startswith("tmp/")) == sorted(
        g for g in got[1:] if isinstance(g, str))


def test_batches_keep_the_servers_bounds() -> None:
    many = [Wanted(f"/f{i}", 1, 1000, "h") for i in range(BATCH_FILES + 1)]
    assert [len(b) for b in small_batches(many)] == [BATCH_FILES, 1]
    big = [Wanted(f"/f{i}", 1, BATCH_BYTES // 3, "h") for i in range(4)]
    assert [len(b) for b in small_batches(big)] == [3, 1]


class OlderServer(FakeServer):
    """A server from before ``POST /files/contents``."""

    def serve(self, call: Call) -> Answer:
        if call.path == "/files/contents":
            return Answer(404, {"error": {"code": "not_found", "message": "no such route"}})
        return super().serve(call)


def test_a_server_without_batch_downloads_is_read_file_by_file(tmp_path: Path) -> None:
    server = OlderServer()
    for i in range(300):  # two groups: the second one asked for while the first is placed
        server.put_file(f"/f{i}", f"content {i}".encode())
    folder = FakeFolder()
    engine = engine_for(folder, server, tmp_path)
    try:
        assert engine.sync().done
        synced = {n: d for n, d in folder.tree().items() if not n.startswith(".minidropbox")}
        assert synced == {f"f{i}": f"content {i}".encode() for i in range(300)}
        assert server.requests.count("GET /files/content") == 300
    finally:
        engine.close()


def test_a_sync_receives_small_files_many_to_a_request(tmp_path: Path) -> None:
    server = FakeServer()
    for i in range(300):
        server.put_file(f"/many/f{i:03}", f"small {i}".encode())
    folder = FakeFolder()
    engine = engine_for(folder, server, tmp_path)
    try:
        assert engine.sync().done
        assert folder.read("many/f299") == b"small 299"
        assert server.requests.count("POST /files/contents") == 2  # 256 + 44
        assert server.requests.count("GET /files/content") == 0
    finally:
        engine.close()
