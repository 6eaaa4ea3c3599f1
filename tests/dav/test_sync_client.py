"""WebDAV and the sync client see one tree: a file changed through /dav/ reaches a running
``minidropbox sync``, and a file the sync client changes is visible through /dav/."""

from __future__ import annotations

from pathlib import Path

from tests.dav.conftest import DavUser
from tests.e2e.sync_harness import SyncClient, wait_until


def test_webdav_and_a_running_sync_client_see_each_others_changes(dav_user: DavUser,
                                                                   tmp_path: Path) -> None:
    client = SyncClient(dav_user.base, tmp_path, "desk", dav_user.username)
    with dav_user.client() as dav:
        try:
            client.start()
            wait_until(lambda: "idle" in client.log(), timeout=60, message="sync client idle")
            # WebDAV -> sync client: a new file, in a new folder, then an overwrite.
            assert dav.request("MKCOL", "/dav/Notes").status_code == 201
            assert dav.put("/dav/Notes/from-dav.txt", content=b"written over WebDAV"
                           ).status_code == 201
            wait_until(lambda: client.tree().get("/Notes/from-dav.txt") == b"written over WebDAV",
                       timeout=30, message="the WebDAV file in the synced folder")
            assert dav.put("/dav/Notes/from-dav.txt", content=b"second version").status_code \
                == 204
            wait_until(lambda: client.tree().get("/Notes/from-dav.txt") == b"second version",
                       timeout=30, message="the WebDAV overwrite in the synced folder")
            # Sync client -> WebDAV: a new file and a rename.
            client.write("/Notes/from-sync.txt", b"written in the synced folder")
            wait_until(lambda: dav.get("/dav/Notes/from-sync.txt").content
                       == b"written in the synced folder", timeout=30,
                       message="the synced file over WebDAV")
            (client.root / "Notes" / "from-dav.txt").rename(client.root / "Notes" / "renamed.txt")
            wait_until(lambda: dav.get("/dav/Notes/renamed.txt").status_code == 200
                       and dav.get("/dav/Notes/from-dav.txt").status_code == 404, timeout=30,
                       message="the synced rename over WebDAV")
            # WebDAV delete -> gone from the synced folder.
            assert dav.request("DELETE", "/dav/Notes/from-sync.txt").status_code == 204
            wait_until(lambda: "/Notes/from-sync.txt" not in client.tree(), timeout=30,
                       message="the WebDAV delete in the synced folder")
        finally:
            client.stop()
            print(client.log())
