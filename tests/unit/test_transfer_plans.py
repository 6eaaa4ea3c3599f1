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

REMOTE = {"/Docs": "folder", "/note.txt": "file", "/Docs/Report.txt": "file"}


@pytest.fixture
def api() -> Remote:
    def handler(request: httpx.Request) -> httpx.Response:
        asked = request.url.params["path"]
        if request.url.path == "/api/v1/files/list":
            prefix = "" if asked == "/" else asked.casefold()
            under = [p for p in REMOTE if p.casefold().startswith(prefix + "/")
                     and (request.url.params["recursive"] == "true"
                          or "/" not in p[len(prefix) + 1:])]
            return httpx.Response(200, json={"entries": [
                {"path": p, "name": p.rsplit("/", 1)[1], "type": REMOTE[p]} for p in under]})
        assert request.url.path == "/api/v1/files/metadata"
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


def test_a_name_differing_only_in_case_is_refused(api: Remote, tmp_path: Path) -> None:
    """``put report.txt`` must not become a new version of ``/Docs/Report.txt`` unasked."""
    (tmp_path / "report.txt").write_text("mine")
    (tmp_path / "NOTE.TXT").write_text("mine")
    with pytest.raises(errors.Conflict, match=r"existing /Docs/Report\.txt") as refused:
        plan_put(api, [tmp_path / "report.txt"], "/Docs")
    assert refused.value.exit_code == 5
    with pytest.raises(errors.Conflict, match=r"existing /note\.txt"):
        plan_put(api, [tmp_path / "NOTE.TXT"], None)
    tree = tmp_path / "docs"
    tree.mkdir()
    (tree / "REPORT.txt").write_text("mine")
    with pytest.raises(errors.Conflict, match=r"existing /Docs/Report\.txt"):
        plan_put(api, [tree], "/")
    # Naming the existing spelling on purpose updates it.
    assert _targets(api, [tmp_path / "report.txt"], "/Docs/Report.txt") == ["/Docs/Report.txt"]
