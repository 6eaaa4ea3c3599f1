"""The backup repository on a real temp directory: locks, incomplete snapshots, refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from minidropbox.backup.errors import NotARepository, RepositoryLocked, SnapshotNotFound
from minidropbox.backup.repository import MANIFEST, Repository


def fake_snapshot(repo: Repository, snap_id: str, when: float, complete: bool = True) -> None:
    folder = repo.snapshots_dir / snap_id
    folder.mkdir()
    (folder / "chunks.txt").write_text("")
    if complete:
        (folder / MANIFEST).write_text(json.dumps({"id": snap_id, "time": when}))


def test_writer_lock_is_exclusive_and_names_its_holder(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "repo")
    with repo.lock("backup"):
        with pytest.raises(RepositoryLocked) as err, repo.lock("prune"):
            pass
        assert f"backup by pid {os.getpid()}" in err.value.message
    with repo.lock("prune"):  # released with its holder
        pass


def test_readers_share_but_exclude_prune(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "repo")
    with repo.readers_lock(exclusive=False), repo.readers_lock(exclusive=False), \
            pytest.raises(RepositoryLocked, match="verify or restore"), \
            repo.readers_lock(exclusive=True):
        pass
    with repo.readers_lock(exclusive=True), pytest.raises(RepositoryLocked, match="prune"), \
            repo.readers_lock(exclusive=False):
        pass


def test_incomplete_snapshots_are_hidden_then_removed(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "repo")
    fake_snapshot(repo, "20240101T000000Z-aaaaaa", 1.0)
    fake_snapshot(repo, "20240102T000000Z-bbbbbb", 2.0, complete=False)
    assert [s.id for s in repo.snapshots()] == ["20240101T000000Z-aaaaaa"]
    assert repo.snapshot("latest").id == "20240101T000000Z-aaaaaa"
    with pytest.raises(SnapshotNotFound):
        repo.snapshot("20240102")
    assert repo.remove_incomplete() == 1
    assert [p.name for p in repo.snapshots_dir.iterdir()] == ["20240101T000000Z-aaaaaa"]


def test_refuses_what_is_not_a_repository(tmp_path: Path) -> None:
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "photo.jpg").write_bytes(b"x")
    with pytest.raises(NotARepository, match="not empty"):
        Repository.init(tmp_path / "stuff")
    with pytest.raises(NotARepository, match=r"no config\.json"):
        Repository.open(tmp_path / "nowhere")
