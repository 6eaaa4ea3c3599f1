"""``put --exclude`` and ``get --exclude``: gitignore-style patterns relative to the folder
being transferred, through the real CLI against a real cluster."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_cli_files import Cli, alice, server_url

__all__ = ["alice", "server_url"]


def test_put_and_get_leave_out_what_exclude_names(alice: Cli, tmp_path: Path) -> None:
    src = tmp_path / "project"
    for rel, data in {"main.py": b"code", "notes.txt": b"notes", "debug.log": b"log",
                      "build/out.bin": b"built", "sub/deep.log": b"deep log",
                      "sub/keep.txt": b"kept"}.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    proc = alice.run("put", src, "/", "--exclude", "*.log", "--exclude", "build/")
    assert "Left out 2 file(s) matching --exclude" in proc.stderr, proc.stderr
    listed = {e["path"] for e in alice.json("ls", "/project", "-r")["entries"]}
    assert listed == {"/project/main.py", "/project/notes.txt", "/project/sub",
                      "/project/sub/keep.txt"}
    out = tmp_path / "out"
    out.mkdir()
    alice.run("get", "/project", out, "--exclude", "sub/", "--exclude", "notes.*")
    got = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert got == ["project", "project/main.py"]
