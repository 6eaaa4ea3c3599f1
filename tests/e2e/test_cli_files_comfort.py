"""File-command comfort, as rclone and restic users expect it: the real ``minidropbox`` in a
subprocess against one real cluster for the module (each test has its own account)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_cli_files import Cli
from tests.harness import BIN, TestCluster

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    with TestCluster(tmp_path_factory.mktemp("comfort-cluster")) as shared:
        yield shared


_users = iter(range(1_000_000))


@pytest.fixture
def user(cluster: TestCluster, tmp_path: Path) -> Cli:
    name = f"user{next(_users)}"
    return Cli(cluster.url, tmp_path / name).signup_and_login(name)


def test_put_says_unchanged_and_get_skips_identical_files(user: Cli, tmp_path: Path) -> None:
    src = tmp_path / "docs"
    src.mkdir()
    for i in range(3):
        (src / f"n{i}.txt").write_bytes(os.urandom(1000 + i))
    user.run("put", src, "/")
    again = user.run("put", src, "/")
    assert "Unchanged: 3 files already on the server; nothing sent." in again.stdout
    assert json.loads(user.run("--json", "put", src, "/").stdout)["stats"]["unchanged"] == 3
    (src / "n0.txt").write_bytes(b"changed")
    one = user.run("put", src, "/").stdout
    assert "Uploaded 1 file" in one and "2 unchanged" in one

    out = tmp_path / "out"
    out.mkdir()
    user.run("get", "/docs", out)
    second = user.run("get", "/docs", out)
    assert "Unchanged: 3 files already here; nothing downloaded." in second.stdout
    # Same content, other mtime: still recognised by content, not fetched again.
    os.utime(out / "docs" / "n1.txt", (1_600_000_000, 1_600_000_000))
    stats = json.loads(user.run("--json", "get", "/docs", out).stdout)["stats"]
    assert stats["unchanged"] == 3 and stats["files"] == 0 and stats["bytes_received"] == 0


def test_get_does_not_clobber_local_edits_without_force(user: Cli, tmp_path: Path) -> None:
    (tmp_path / "plan.txt").write_text("version one")
    user.run("put", tmp_path / "plan.txt", "/plan.txt")
    out = tmp_path / "out"
    out.mkdir()
    user.run("get", "/plan.txt", out)
    (tmp_path / "plan.txt").write_text("version two, from elsewhere")
    user.run("put", tmp_path / "plan.txt", "/plan.txt")
    # The local copy is an older download: replacing it loses nothing (history has it).
    user.run("get", "/plan.txt", out)
    assert (out / "plan.txt").read_text() == "version two, from elsewhere"
    # A local edit the server never saw is kept, and the command says so (exit 5).
    (out / "plan.txt").write_text("my own unsaved work")
    line = user.fails("get", "/plan.txt", out, exit_code=5)
    assert "--force" in line
    assert (out / "plan.txt").read_text() == "my own unsaved work"
    user.run("get", "/plan.txt", out, "--force")
    assert (out / "plan.txt").read_text() == "version two, from elsewhere"


def test_ls_natural_order_and_one_row_per_entry_in_a_pipe(user: Cli, tmp_path: Path) -> None:
    long_name = "a-very-long-name-" + "x" * 150 + ".txt"
    for name in ("file10.txt", "File2.txt", "file1.txt", long_name):
        (tmp_path / name).write_bytes(b"12345")
        user.run("put", tmp_path / name, f"/list/{name}")
    user.run("mkdir", "/list/sub")
    assert user.run("ls", "/list").stdout.splitlines() == [
        long_name, "file1.txt", "File2.txt", "file10.txt", "sub/"]
    rows = user.run("ls", "-l", "/list").stdout.splitlines()  # stdout is a pipe here
    assert len(rows) == 5 and rows[0].endswith(long_name) and "5 B" in rows[0]
    assert rows[-1].endswith("sub/")


def test_cat_and_streaming_through_pipes(user: Cli, tmp_path: Path) -> None:
    data = os.urandom(3 * MiB + 17)
    proc = subprocess.run([str(BIN), "put", "-", "/piped/data.bin"], input=data,
                          capture_output=True, env=user.env, cwd=tmp_path, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert user.json("ls", "/piped/data.bin")["entries"][0]["size"] == len(data)
    for args in (["cat", "/piped/data.bin"], ["get", "/piped/data.bin", "-"]):
        out = subprocess.run([str(BIN), *args], capture_output=True, env=user.env,
                             cwd=tmp_path, timeout=240)
        assert out.returncode == 0 and out.stdout == data, out.stderr
    # Range reads: only the bytes asked for; a range that makes no sense is one line, exit 2.
    for spec, want in (("0-0", data[:1]), ("1048570-2097160", data[1048570:2097161]),
                       (f"{len(data) - 5}-", data[-5:])):
        out = subprocess.run([str(BIN), "cat", "/piped/data.bin", "--range", spec],
                             capture_output=True, env=user.env, cwd=tmp_path, timeout=240)
        assert out.returncode == 0 and out.stdout == want, (spec, out.stderr)
    for spec in ("9-3", "x-", "5"):
        assert "--range" in user.fails("cat", "/piped/data.bin", "--range", spec, exit_code=2)
    again = subprocess.run([str(BIN), "put", "-", "/piped/data.bin"], input=data,
                           capture_output=True, env=user.env, cwd=tmp_path, timeout=240)
    assert b"Unchanged" in again.stdout, again
    assert "needs a file name" in user.run("put", "-", ok=False).stderr


def test_server_side_copy_moves_no_bytes(cluster: TestCluster, user: Cli,
                                         tmp_path: Path) -> None:
    src = tmp_path / "proj"
    (src / "sub").mkdir(parents=True)
    (src / "plan.txt").write_bytes(os.urandom(300_000))
    (src / "sub" / "data.bin").write_bytes(os.urandom(2 * MiB))
    user.run("put", src, "/")
    chunks_before = sum(len(cluster.chunk_files(n.name)) for n in cluster.nodes)
    used_before = user.json("du")["used_bytes"]

    user.run("cp", "/proj", "/backup")  # a folder tree
    user.run("mkdir", "/inbox")
    copied = user.json("cp", "/proj/plan.txt", "/inbox")  # into an existing folder
    assert copied["path"] == "/inbox/plan.txt" and copied["version"] == 1

    assert sum(len(cluster.chunk_files(n.name)) for n in cluster.nodes) == chunks_before
    assert user.json("du")["used_bytes"] == used_before  # chunks shared: no quota bytes
    tree = {e["path"] for e in user.json("ls", "-r", "/backup")["entries"]}
    assert tree == {"/backup/plan.txt", "/backup/sub", "/backup/sub/data.bin"}
    for path, local in (("/backup/sub/data.bin", src / "sub" / "data.bin"),
                        ("/inbox/plan.txt", src / "plan.txt")):
        out = subprocess.run([str(BIN), "cat", path], capture_output=True, env=user.env,
                             timeout=120)
        assert out.returncode == 0 and out.stdout == local.read_bytes()
    # The copy is a file of its own: changing it leaves the original as it was.
    (tmp_path / "new.txt").write_text("edited copy")
    user.run("put", tmp_path / "new.txt", "/inbox/plan.txt")
    assert user.json("ls", "/proj/plan.txt")["entries"][0]["version"] == 1
    assert "already exists" in user.fails("cp", "/proj", "/backup/sub/data.bin",
                                          exit_code=5)
    assert "into itself" in user.fails("cp", "/proj", "/proj/sub/deeper", exit_code=2)
    assert user.fails("cp", "/nothing", "/x", exit_code=4)
