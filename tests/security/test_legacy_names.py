"""Names stored before the character rules (C1 controls, bidi overrides and invisible
characters were once accepted) stay reachable: their owner can list, download, replace,
rename, delete and undelete them, over the API and with the CLI, while no new name may break
the rules — not by upload, folder, commit nor rename."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import sqlalchemy

from minidropbox.client.config import Credentials, save_credentials
from minidropbox.core.paths import parent_of, path_key
from tests.harness import BIN, TestCluster
from tests.security.conftest import User, database, new_user, unique

OVERRIDE = "\u202e"  # "gpj.exe" + U+202E reads "exe.jpg"
CSI = "\u009b"


def _rename_in_database(cluster: TestCluster, old_prefix: str, new_prefix: str) -> None:
    """What a database written before the rules holds: entries whose names now break them."""
    engine = database(cluster)
    try:
        with engine.begin() as conn:
            rows = conn.execute(sqlalchemy.text(
                "SELECT id, path FROM entries WHERE path = :p OR path LIKE :below"),
                {"p": old_prefix, "below": old_prefix + "/%"}).all()
            assert rows, old_prefix
            for entry_id, path in rows:
                new = new_prefix + path[len(old_prefix):]
                conn.execute(sqlalchemy.text(
                    "UPDATE entries SET path = :path, path_key = :key, parent_key = :parent "
                    "WHERE id = :id"), {"path": new, "key": path_key(new),
                                        "parent": path_key(parent_of(new)), "id": entry_id})
    finally:
        engine.dispose()


def _legacy_tree(client: httpx.Client, cluster: TestCluster, user: User) -> tuple[str, str]:
    """A folder and a file in it, both named with characters the rules now refuse."""
    base = unique("old")
    r = client.put("/api/v1/files/content", headers=user.auth, content=b"old bytes",
                   params={"path": f"/{base}/gpj.exe"})
    assert r.status_code == 201, r.text
    _rename_in_database(cluster, f"/{base}/gpj.exe", f"/{base}/gpj{OVERRIDE}.exe")
    _rename_in_database(cluster, f"/{base}", f"/{base}{CSI}")
    return f"/{base}{CSI}", f"/{base}{CSI}/gpj{OVERRIDE}.exe"


def test_legacy_names_can_be_read_replaced_renamed_and_deleted(
        client: httpx.Client, sec_cluster: TestCluster) -> None:
    user = new_user(client, "legacy")
    folder, file = _legacy_tree(client, sec_cluster, user)
    r = client.get("/api/v1/files/list", headers=user.auth, params={"path": folder})
    assert r.status_code == 200 and [e["path"] for e in r.json()["entries"]] == [file], r.text
    r = client.get("/api/v1/files/metadata", headers=user.auth, params={"path": file})
    assert r.status_code == 200 and r.json()["name"] == f"gpj{OVERRIDE}.exe", r.text
    r = client.get("/api/v1/files/content", headers=user.auth, params={"path": file})
    assert r.status_code == 200 and r.content == b"old bytes"
    # Replacing the file under its old name is not making a name.
    r = client.put("/api/v1/files/content", headers=user.auth, content=b"new bytes",
                   params={"path": file})
    assert r.status_code == 201 and r.json()["version"] == 2, r.text
    r = client.get("/api/v1/files/versions", headers=user.auth, params={"path": file})
    assert [v["version"] for v in r.json()["versions"]] == [2, 1], r.text
    r = client.post("/api/v1/files/restore", headers=user.auth,
                    json={"path": file, "version": 1})
    assert r.status_code == 201, r.text
    # A new file inside the old folder is fine when its own name is.
    r = client.put("/api/v1/files/content", headers=user.auth, content=b"x",
                   params={"path": f"{folder}/clean.txt"})
    assert r.status_code == 201, r.text

    # No new name may break the rules: not by upload, folder, rename nor batch commit.
    bad = f"{folder}/new{OVERRIDE}.txt"
    r = client.put("/api/v1/files/content", headers=user.auth, content=b"x",
                   params={"path": bad})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_path", r.text
    r = client.post("/api/v1/files/folder", headers=user.auth, json={"path": bad})
    assert r.status_code == 400, r.text
    r = client.post("/api/v1/files/move", headers=user.auth,
                    json={"from": f"{folder}/clean.txt", "to": bad})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_path", r.text
    r = client.post("/api/v1/files/commit_batch", headers=user.auth, json={"commits": [
        {"path": bad, "size": 0, "chunks": []}]})
    assert r.status_code == 200 and not r.json()["results"][0]["ok"], r.text
    assert r.json()["results"][0]["error"]["code"] == "invalid_path"

    # Renamed to a clean name, the tree is an ordinary one.
    clean_folder = folder.replace(CSI, "")
    r = client.post("/api/v1/files/move", headers=user.auth,
                    json={"from": folder, "to": clean_folder})
    assert r.status_code == 200, r.text
    moved = f"{clean_folder}/gpj{OVERRIDE}.exe"
    r = client.post("/api/v1/files/move", headers=user.auth,
                    json={"from": moved, "to": f"{clean_folder}/exe.jpg"})
    assert r.status_code == 200, r.text
    r = client.get("/api/v1/files/content", headers=user.auth,
                   params={"path": f"{clean_folder}/exe.jpg"})
    assert r.status_code == 200 and r.content == b"old bytes"


def test_legacy_names_can_be_deleted_and_undeleted(client: httpx.Client,
                                                   sec_cluster: TestCluster) -> None:
    user = new_user(client, "legacy-rm")
    folder, file = _legacy_tree(client, sec_cluster, user)
    r = client.delete("/api/v1/files", headers=user.auth, params={"path": file})
    assert r.status_code == 200, r.text
    r = client.post("/api/v1/trash/restore", headers=user.auth, json={"path": file})
    assert r.status_code == 200, r.text
    r = client.delete("/api/v1/files", headers=user.auth, params={"path": folder})
    assert r.status_code == 200 and r.json()["deleted"] == 2, r.text
    r = client.delete("/api/v1/trash", headers=user.auth, params={"path": folder})
    assert r.status_code == 200, r.text
    r = client.get("/api/v1/files/metadata", headers=user.auth, params={"path": folder})
    assert r.status_code == 404


def test_the_cli_renames_a_legacy_name(client: httpx.Client, sec_cluster: TestCluster,
                                       tmp_path: Path) -> None:
    user = new_user(client, "legacy-cli")
    folder, file = _legacy_tree(client, sec_cluster, user)
    config = tmp_path / "config"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINIDROPBOX_")}
    env.update({"XDG_CONFIG_HOME": str(config), "NO_COLOR": "1"})
    os.environ["XDG_CONFIG_HOME"], old = str(config), os.environ.get("XDG_CONFIG_HOME")
    try:
        save_credentials(Credentials(sec_cluster.url, user.name, user.tokens["access_token"],
                                     user.tokens["refresh_token"], time.time() + 600))
    finally:
        if old is None:
            del os.environ["XDG_CONFIG_HOME"]
        else:
            os.environ["XDG_CONFIG_HOME"] = old

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env,
                              timeout=120)

    listed = cli("ls", folder)
    assert listed.returncode == 0 and "gpj" in listed.stdout, listed.stderr
    refused = cli("mv", file, f"{folder}/again{OVERRIDE}.txt")
    assert refused.returncode != 0 and "U+202E" in refused.stderr, refused
    renamed = cli("mv", file, f"{folder}/exe.jpg")
    assert renamed.returncode == 0, renamed.stderr
    r = client.get("/api/v1/files/content", headers=user.auth,
                   params={"path": f"{folder}/exe.jpg"})
    assert r.status_code == 200 and r.content == b"old bytes"
