"""``minidropbox share ...`` as a user runs it: the real script against a real cluster."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.e2e.test_cli_files import Cli
from tests.harness import TestCluster


def test_share_link_commands(share_cluster: TestCluster, tmp_path: Path) -> None:
    alice = Cli(share_cluster.url, tmp_path / "alice").signup_and_login(
        f"alice-{tmp_path.name[-8:]}".lower()[:32])
    (tmp_path / "notes.txt").write_bytes(b"shared notes")
    alice.run("put", tmp_path / "notes.txt", "/notes.txt")

    url = alice.run("share", "link", "/notes.txt", "--expires", "7d",
                    "--max-downloads", "3").stdout.strip()
    assert url.startswith(share_cluster.url + "/s/")
    assert httpx.get(url, params={"dl": 1}).content == b"shared notes"
    protected = json.loads(alice.run("--json", "share", "link", "/notes.txt",
                                     "--password-stdin", input="a long password\n").stdout)
    assert protected["password_protected"] is True and protected["share_url"].startswith("http")
    assert httpx.get(protected["share_url"], params={"dl": 1}).status_code == 401
    assert httpx.get(protected["share_url"], params={"dl": 1},
                     auth=("", "a long password")).content == b"shared notes"

    listed = alice.json("share", "links", "/notes.txt")["links"]
    assert len(listed) == 2
    counted = next(item for item in listed if item["max_downloads"] == 3)
    assert counted["downloads"] == 1
    table = alice.run("share", "links").stdout
    assert counted["link_id"] in table and "1/3" in table

    alice.run("share", "revoke", counted["link_id"])
    assert httpx.get(url, params={"dl": 1}).status_code == 404
    assert "no link" in alice.fails("share", "revoke", counted["link_id"], exit_code=4)
    assert "--expires" in alice.fails("share", "link", "/notes.txt", "--expires", "soon",
                                      exit_code=2)
    assert "does not exist" in alice.fails("share", "link", "/missing.txt", exit_code=4)
    alice.run("mkdir", "/Inbox")
    drop = alice.run("share", "link", "/Inbox", "--upload-only").stdout.strip()
    assert httpx.post(drop, params={"name": "hello.txt"}, content=b"hi").status_code == 201
    assert alice.run("ls", "/Inbox").stdout.count("hello.txt") == 1
