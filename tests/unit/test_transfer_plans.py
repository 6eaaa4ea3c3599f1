"""Where ``put`` sends each local file, decided the way ``cp -r`` would."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from minidropbox.client.localpaths import TMP_PREFIX
from minidropbox.client.plans import plan_put
from minidropbox.client.remote import Remote
from minidropbox.core import errors
from tests.unit.mock_remote import mock_remote

REMOTE = {"/Docs": "folder", "/note.txt": "file"}


@pytest.fixture
def api() -> Remote:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/files/metadata"
        asked = request.url.params["path"]
        path = next((p for p in REMOTE if p.casefold() == asked.casefold()), None)
        if path is None:
            return httpx.Response(404, json={"error": {"code": "not_found", "message": asked}})
        return httpx.Response(200, json={"path": path, "name": path[1:], "type": REMOTE[path]})

    return mock_remote(handler)


@pytest.fixture
def local(tmp_path: Path) -> Path:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "empty").mkdir()
    (tree / "sub" / "c.txt").write_text("c")
    (tree / f"{TMP_PREFIX}half").write_text("a download in progress")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("s")
    os.symlink(outside, tree / "link")
    return tmp_path


def _targets(api: Remote, sources: list[Path], remote: str | None) -> list[str]:
    return sorted(item.remote_path for item in plan_put(api, sources, remote).items)


def test_a_single_file(api: Remote, local: Path) -> None:
    a = local / "a.txt"
    assert _targets(api, [a], None) == ["/a.txt"]
    assert _targets(api, [a], "/new-name.txt") == ["/new-name.txt"]
    assert _targets(api, [a], "/note.txt") == ["/note.txt"]  # a new version of it
    assert _targets(api, [a], "/Docs") == ["/Docs/a.txt"]  # an existing folder
    assert _targets(api, [a], "/Later/") == ["/Later/a.txt"]  # a trailing slash
    assert _targets(api, [a], "/docs") == ["/docs/a.txt"]  # the server matches any case


def test_several_files_need_a_folder(api: Remote, local: Path) -> None:
    both = [local / "a.txt", local / "b.txt"]
    assert _targets(api, both, "/New") == ["/New/a.txt", "/New/b.txt"]
    with pytest.raises(errors.AlreadyExists):
        plan_put(api, both, "/note.txt")


def test_a_folder_tree(api: Remote, local: Path) -> None:
    plan = plan_put(api, [local / "tree"], "/")
    # Temp files of a download in progress stay home; a symlinked folder is not followed.
    assert sorted(i.remote_path for i in plan.items) == ["/tree/sub/c.txt"]
    assert plan.folders == ["/tree/empty"]
    assert plan.total_bytes == 1
    assert _targets(api, [local / "tree"], "/Docs") == ["/Docs/tree/sub/c.txt"]
    assert _targets(api, [local / "tree"], "/Copy") == ["/Copy/sub/c.txt"]


def test_missing_local_path(api: Remote, local: Path) -> None:
    with pytest.raises(errors.NotFound, match="No such local file"):
        plan_put(api, [local / "nope"], None)
