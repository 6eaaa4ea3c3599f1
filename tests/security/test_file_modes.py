"""Server processes keep their data to themselves: every file they create is 0600 and every
folder 0700 whatever the umask they were started with (the metadata database holds password
and session hashes and every path; chunks are users' files)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx

from tests.harness import TestCluster
from tests.security.conftest import new_user


def _open_to_others(root: Path) -> list[str]:
    found = []
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files, "."]:
            path = Path(folder) / name
            mode = stat.S_IMODE(path.lstat().st_mode)
            if mode & 0o077:
                found.append(f"{path.relative_to(root.parent)} {mode:o}")
    return found


def test_server_data_is_private_whatever_the_umask(sec_cluster: TestCluster,
                                                   client: httpx.Client) -> None:
    # The test runner's umask (usually 022) is what the servers inherited.
    user = new_user(client, "modes")
    r = client.put("/api/v1/files/content", headers=user.auth, params={"path": "/m.txt"},
                   content=os.urandom(300_000))
    assert r.status_code == 201
    roots = [sec_cluster.tmp / "api-data", *(sec_cluster.node_dir(n.name)
                                             for n in sec_cluster.nodes)]
    assert any(sec_cluster.chunk_files(n.name) for n in sec_cluster.nodes)
    exposed = [line for root in roots for line in _open_to_others(root)]
    assert not exposed, "readable by group or others:\n" + "\n".join(exposed[:20])
