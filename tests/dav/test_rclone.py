"""rclone's webdav backend (vendor=owncloud) against /dav/: a tree goes up and comes back
byte-identical, with modification times and checksums kept, and rclone's moves and deletes
land in the trash and the change journal like any other client's.

``make test`` sends 150 files with an 8 MiB one (several chunks); ``make soak``
(``MINIDROPBOX_SOAK=1``) the issue's full tree: 1,000 files with a 100 MiB one. Both have the
nested folders, the Unicode and URL-hostile names and the empty file."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.dav.conftest import DavUser, rclone_config

MiB = 1024 * 1024
SOAK = bool(os.environ.get("MINIDROPBOX_SOAK"))
FILES = 1000 if SOAK else 150
BIG = (100 if SOAK else 8) * MiB
pytestmark = pytest.mark.skipif(shutil.which("rclone") is None,
                                reason="rclone is not installed (make test installs it)")


def make_tree(root: Path, seed: int = 16) -> dict[str, bytes]:
    """``FILES`` files: nested folders, Unicode and URL-hostile names, an empty file, a big
    one; modification times spread over the past year."""
    rng = random.Random(seed)
    names = ["ünïcødé/日本語.txt", "Ελληνικά/σημειώσεις.md", "emoji 🎉/party.txt",
             "100% real #1 (draft).txt", "a/b/c/d/e/deep.txt", "empty.txt", "big.bin"]
    names += [f"dir{i % 12}/sub{i % 5}/file-{i:04d}.txt" for i in range(FILES - len(names))]
    files: dict[str, bytes] = {}
    now = 1_790_000_000
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = (b"" if name == "empty.txt" else rng.randbytes(BIG) if name == "big.bin"
                else rng.randbytes(rng.randint(1, 3000)))
        path.write_bytes(data)
        mtime = now - rng.randint(0, 365 * 86400)
        os.utime(path, (mtime, mtime))
        files[name] = data
    return files


def rclone(config: Path, *args: str) -> str:
    result = subprocess.run(
        ["rclone", "--config", str(config), "--transfers", "16", "--checkers", "16",
         "--low-level-retries", "2", "--retries", "1", *args],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_rclone_sync_check_mtimes_resync_download_move_delete(dav_user: DavUser,
                                                               tmp_path: Path) -> None:
    config = rclone_config(tmp_path, dav_user)
    local = tmp_path / "tree"
    files = make_tree(local)

    rclone(config, "sync", str(local), "md:tree")
    checked = rclone(config, "check", str(local), "md:tree")
    assert "0 differences found" in checked and f"{FILES} matching files" in checked, checked
    assert "could not be checked" not in checked, checked  # checksums compared, not sizes

    remote = {e["Path"]: e for e in json.loads(rclone(config, "lsjson", "-R", "--files-only",
                                                      "--hash", "md:tree"))}
    assert set(remote) == set(files)
    for name in ("big.bin", "empty.txt", "ünïcødé/日本語.txt", "100% real #1 (draft).txt"):
        local_mtime = int((local / name).stat().st_mtime)
        assert remote[name]["ModTime"].startswith(
            _iso(local_mtime)), (name, remote[name]["ModTime"])
        assert remote[name]["Size"] == len(files[name])

    again = rclone(config, "sync", "-v", str(local), "md:tree")
    assert "Copied" not in again and "Updated" not in again, again

    down = tmp_path / "down"
    down.mkdir()
    rclone(config, "sync", "md:tree", str(down))
    for name, data in files.items():
        assert (down / name).read_bytes() == data, name

    with httpx.Client(base_url=dav_user.base, headers=dav_user.api, timeout=60) as api:
        cursor = api.get("/api/v1/changes").json()["cursor"]
        rclone(config, "move", "md:tree/dir3", "md:tree/moved-dir3")
        rclone(config, "delete", "md:tree/ünïcødé")
        changes = api.get("/api/v1/changes", params={"cursor": cursor}).json()["entries"]
        moves = [c for c in changes if c["op"] == "move"]
        assert any(c["from_path"] == "/tree/dir3" and c["path"] == "/tree/moved-dir3"
                   for c in moves), changes
        assert any(c["op"] == "delete" and c["path"] == "/tree/ünïcødé/日本語.txt"
                   for c in changes), changes
        trash = [t["path"] for t in api.get("/api/v1/trash").json()["entries"]]
        assert "/tree/ünïcødé/日本語.txt" in trash
        moved = api.get("/api/v1/files/list", params={"path": "/tree/moved-dir3",
                                                        "recursive": "true"}).json()
        assert {e["path"].rsplit("/", 1)[-1] for e in moved["entries"] if e["type"] == "file"} \
            == {Path(n).name for n in files if n.startswith("dir3/")}


def _iso(epoch: int) -> str:
    from datetime import UTC, datetime
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S")
