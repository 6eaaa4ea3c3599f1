"""The file commands, run as a user runs them: the real ``minidropbox`` script in a subprocess
against a real cluster (API + 3 storage nodes, one per module), each user with their own config
folder and account."""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest

from minidropbox.core.chunking import MAX_CHUNK, MIN_CHUNK, chunk_bytes
from tests.conftest import PASSWORD, unique_name
from tests.harness import BIN, TestCluster

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def server_url(module_cluster: TestCluster) -> str:
    """One cluster for the module: each test signs up an account of its own."""
    return module_cluster.url


class Cli:
    """One user at one terminal: ``minidropbox`` with its own XDG_CONFIG_HOME."""

    def __init__(self, url: str, home: Path) -> None:
        self.url = url
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MINIDROPBOX_")}
        self.env.update({"XDG_CONFIG_HOME": str(home / "config"), "COLUMNS": "200",
                         "NO_COLOR": "1"})

    def run(self, *args: str | Path, input: str | None = None, ok: bool = True,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(BIN), *map(str, args)], input=input, capture_output=True,
                              text=True, env=self.env, cwd=cwd or self.home, timeout=240)
        if ok:
            assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stderr}"
        return proc

    def json(self, *args: str | Path, cwd: Path | None = None) -> Any:
        return json.loads(self.run("--json", *args, cwd=cwd).stdout)

    def fails(self, *args: str | Path, exit_code: int) -> str:
        """Run a command that must fail with one clear line on stderr; return that line."""
        proc = self.run(*args, ok=False)
        assert proc.returncode == exit_code, f"{args}: exit {proc.returncode}\n{proc.stderr}"
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
        assert "Traceback" not in proc.stderr
        return lines[0]

    def signup_and_login(self, username: str) -> Cli:
        """``signup`` logs in as the new account (one process: each costs a Python start)."""
        self.run("--server", self.url, "signup", username, "--password-stdin",
                 input=PASSWORD + "\n")
        return self


@pytest.fixture
def alice(server_url: str, tmp_path: Path) -> Cli:
    return Cli(server_url, tmp_path / "alice").signup_and_login(unique_name("alice"))


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every file (with its bytes) and folder (None) under root, by relative path."""
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def test_round_trip_is_byte_identical(alice: Cli, tmp_path: Path) -> None:
    rng = random.Random(20240501)
    one_chunk = rng.randbytes(MIN_CHUNK)
    multi = rng.randbytes(12 * MiB + 12345)
    assert len(chunk_bytes(one_chunk)) == 1 and len(chunk_bytes(multi)) > 3
    src = tmp_path / "src"
    src.mkdir()
    files = {"empty": b"", "one-byte": b"x", "one-chunk": one_chunk, "multi": multi,
             "max-chunk": bytes(MAX_CHUNK)}
    for name, data in files.items():
        (src / name).write_bytes(data)
        os.utime(src / name, (1_700_000_000, 1_700_000_000 + len(data) % 1000))
        alice.run("put", src / name, f"/rt/{name}")
    out = tmp_path / "out"
    out.mkdir()
    for name, data in files.items():
        alice.run("get", f"/rt/{name}", out)
        assert (out / name).read_bytes() == data, name
        assert (out / name).stat().st_mtime == pytest.approx((src / name).stat().st_mtime)
    listing = alice.json("ls", "/rt")["entries"]
    assert {e["name"]: e["size"] for e in listing} == {n: len(d) for n, d in files.items()}
    assert not [p for p in out.iterdir() if p.name.startswith(".minidropbox-tmp-")]

    # A folder tree, with an empty folder and a nested one, both ways.
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "empty").mkdir()
    (tree / "top.txt").write_text("top")
    (tree / "a" / "mid.bin").write_bytes(rng.randbytes(700_000))
    (tree / "a" / "b" / "deep.txt").write_text("deep")
    alice.run("put", tree, "/")
    paths = {e["path"] for e in alice.json("ls", "-r", "/tree")["entries"]}
    assert {"/tree/top.txt", "/tree/a/mid.bin", "/tree/a/b/deep.txt", "/tree/empty"} <= paths
    alice.run("get", "/tree", tmp_path / "back")  # absent: becomes the copy itself
    assert _tree(tmp_path / "back") == _tree(tree)
    (tmp_path / "into").mkdir()
    alice.run("get", "/tree", tmp_path / "into")  # existing folder: the copy goes inside
    assert _tree(tmp_path / "into" / "tree") == _tree(tree)


def test_only_missing_chunks_are_sent(alice: Cli, tmp_path: Path) -> None:
    rng = random.Random(7)
    original = rng.randbytes(20 * MiB)
    big = tmp_path / "big.bin"
    big.write_bytes(original)
    first = alice.json("put", big, "/big.bin")["stats"]
    assert first["chunks_sent"] == first["chunks_total"] > 10
    assert first["bytes_sent"] == len(original)

    again = alice.json("put", big, "/big.bin")["stats"]
    assert again["chunks_total"] == first["chunks_total"]
    assert again["chunks_sent"] == 0 and again["bytes_sent"] == 0

    middle = len(original) // 2
    changed = original[:middle] + b"!" + original[middle:]
    big.write_bytes(changed)
    delta = alice.json("put", big, "/big.bin")["stats"]
    assert 1 <= delta["chunks_sent"] <= 3, delta
    assert delta["bytes_sent"] <= 3 * MAX_CHUNK

    history = alice.json("versions", "/big.bin")["versions"]
    assert [v["version"] for v in history] == sorted((v["version"] for v in history),
                                                    reverse=True)
    assert history[0]["size"] == len(changed) and history[-1]["size"] == len(original)
    assert "version" in alice.run("versions", "/big.bin").stdout  # the table's header

    latest = history[0]["version"]
    restored = alice.json("restore", "/big.bin", "--version", str(history[-1]["version"]))
    assert restored["version"] == latest + 1 and restored["size"] == len(original)
    alice.run("get", "/big.bin", tmp_path / "restored.bin")
    assert (tmp_path / "restored.bin").read_bytes() == original
    alice.run("get", "/big.bin", tmp_path / "v-latest.bin", "--version", str(latest))
    assert (tmp_path / "v-latest.bin").read_bytes() == changed


def test_browse_move_delete_and_undelete(alice: Cli, tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("hello")
    assert alice.json("mkdir", "/Docs/Old")["type"] == "folder"  # parents created
    alice.run("put", note, "/Docs/")
    alice.run("put", note, "/Docs/Old/older.txt")

    top = alice.json("ls")["entries"]
    assert [(e["name"], e["type"]) for e in top] == [("Docs", "folder")]
    names = {e["name"] for e in alice.json("ls", "/Docs")["entries"]}
    assert names == {"Old", "note.txt"}
    deep = {e["path"] for e in alice.json("ls", "-r", "/Docs")["entries"]}
    assert deep == {"/Docs/Old", "/Docs/note.txt", "/Docs/Old/older.txt"}
    assert alice.run("ls", "/Docs").stdout == "note.txt\nOld/\n"  # natural order, no case
    text = alice.run("ls", "-l", "/Docs").stdout
    assert "note.txt" in text and "Old/" in text and "5 B" in text

    moved = alice.json("mv", "/Docs/note.txt", "/Docs/renamed.txt")
    assert moved["path"] == "/Docs/renamed.txt"
    moved = alice.json("mv", "/Docs/renamed.txt", "/Docs/Old")  # into an existing folder
    assert moved["path"] == "/Docs/Old/renamed.txt"
    alice.run("mv", "/Docs/Old", "/Archive")
    assert {e["path"] for e in alice.json("ls", "-r", "/Archive")["entries"]} == {
        "/Archive/older.txt", "/Archive/renamed.txt"}

    alice.run("rm", "/Archive/older.txt")
    alice.run("rm", "/Archive")
    assert [e["name"] for e in alice.json("ls")["entries"]] == ["Docs"]
    trashed = {e["path"] for e in alice.json("trash")["entries"]}
    assert {"/Archive", "/Archive/older.txt"} <= trashed
    assert "/Archive" in alice.run("trash").stdout
    alice.fails("get", "/Archive/renamed.txt", tmp_path, exit_code=4)

    alice.run("undelete", "/Archive")
    assert {e["path"] for e in alice.json("ls", "-r", "/Archive")["entries"]} == {
        "/Archive/renamed.txt"}
    alice.run("undelete", "/Archive/older.txt")
    alice.run("get", "/Archive/older.txt", tmp_path / "older.txt")
    assert (tmp_path / "older.txt").read_text() == "hello"

    alice.run("rm", "/Archive/renamed.txt")
    assert alice.json("trash", "--purge", "/Archive/renamed.txt")["purged"] == 1
    alice.fails("undelete", "/Archive/renamed.txt", exit_code=4)
    alice.run("rm", "/Archive")
    assert alice.json("trash", "--purge-all", "--yes")["purged"] >= 2
    assert alice.json("trash")["entries"] == []


def test_errors_are_one_clear_line(alice: Cli, server_url: str, tmp_path: Path) -> None:
    stranger = Cli(server_url, tmp_path / "stranger")
    assert "Not logged in" in stranger.fails("ls", exit_code=3)
    assert "Not logged in" in stranger.fails("put", __file__, exit_code=3)

    for args in (("ls", "/nope"), ("get", "/nope.txt", tmp_path), ("versions", "/nope.txt"),
                 ("rm", "/nope"), ("mv", "/nope", "/other"), ("undelete", "/nope")):
        alice.fails(*args, exit_code=4)
    alice.fails("put", tmp_path / "no-such-file", exit_code=4)

    for args in (("ls", "/a/../b"), ("mkdir", "/a//b"), ("mkdir", "/a\\b"),
                 ("put", __file__, "/x/./y"), ("get", "/bad\x01name"), ("rm", "/")):
        alice.fails(*args, exit_code=2)

    local = tmp_path / "f.txt"
    local.write_text("x")
    alice.run("put", local, "/f.txt")
    alice.fails("mkdir", "/f.txt", exit_code=5)
    alice.fails("restore", "/f.txt", "--version", "99", exit_code=4)


def test_get_never_writes_outside_its_target(alice: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "link").mkdir(parents=True)
    (src / "link" / "secret.txt").write_text("payload")
    (src / "fine.txt").write_text("fine")
    alice.run("put", src, "/Docs")

    # The local target already holds a symlink where the remote has a folder.
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    (dest / "Docs").mkdir(parents=True)
    os.symlink(outside, dest / "Docs" / "link")
    proc = alice.run("get", "/Docs", dest, ok=False)
    assert proc.returncode != 0
    assert "Refusing" in proc.stderr and "Traceback" not in proc.stderr
    assert list(outside.iterdir()) == []
    assert (dest / "Docs" / "fine.txt").read_text() == "fine"


def test_many_small_files_cost_few_requests(alice: Cli, tmp_path: Path) -> None:
    rng = random.Random(3)
    src = tmp_path / "small"
    for d in range(6):
        (src / f"d{d}").mkdir(parents=True)
        for i in range(100):
            (src / f"d{d}" / f"f{i}.txt").write_bytes(rng.randbytes(rng.randint(0, 4000)))
    result = alice.json("put", src, "/")
    assert result["failures"] == []
    assert len(result["entries"]) == 600
    assert result["stats"]["requests"] <= 20, result["stats"]
    assert len(alice.json("ls", "-r", "/small")["entries"]) == 606

    again = alice.json("put", src, "/")["stats"]
    assert again["chunks_sent"] == 0 and again["requests"] <= 20, again

    alice.run("get", "/small", tmp_path / "back")
    assert _tree(tmp_path / "back") == _tree(src)
