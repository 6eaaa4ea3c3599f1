"""Subtree queries use LIKE on path keys: folder names holding LIKE's own wildcards (``_``,
``%``) and its escape character must match only themselves, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import bearer, signup_and_login
from tests.harness import ServerProcess, new_postgres_database, postgres_url, start_api

ENGINES = ["sqlite", pytest.param("postgresql", marks=[
    pytest.mark.postgres,
    pytest.mark.skipif(postgres_url() is None, reason="MINIDROPBOX_TEST_POSTGRES_URL not set")])]


@pytest.fixture(params=ENGINES)
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    base = postgres_url()
    url = new_postgres_database(base) if request.param == "postgresql" and base else (
        f"sqlite:///{tmp_path / 'metadata.db'}")
    server = start_api(tmp_path, env={"database_url": url})
    try:
        yield server
    finally:
        server.stop()


def test_wildcards_in_folder_names_match_only_themselves(api: ServerProcess) -> None:
    with httpx.Client(base_url=api.url, timeout=30) as c:
        c.headers.update(bearer(signup_and_login(c, "wildcards")))

        def paths(folder: str) -> set[str]:
            r = c.get("/api/v1/files/list", params={"path": folder, "recursive": True})
            assert r.status_code == 200, r.text
            return {e["path"] for e in r.json()["entries"]}

        for folder in ("/a_b/in", "/axb/in", "/a%b/in", "/a%bc/in", "/a!b/in", "/a\\%b/in"):
            r = c.post("/api/v1/files/folder", json={"path": folder})
            assert r.status_code in (201, 400), r.text  # a backslash may be refused
        made = paths("/")
        assert {"/a_b/in", "/axb/in", "/a%b/in", "/a%bc/in", "/a!b/in"} <= made
        assert paths("/a_b") == {"/a_b/in"}
        assert paths("/a%b") == {"/a%b/in"}
        assert paths("/a!b") == {"/a!b/in"}

        r = c.post("/api/v1/files/move", json={"from": "/a%b", "to": "/moved"})
        assert r.status_code == 200, r.text
        assert paths("/moved") == {"/moved/in"}
        assert paths("/a%bc") == {"/a%bc/in"}

        r = c.delete("/api/v1/files", params={"path": "/a_b"})
        assert r.status_code == 200 and r.json()["deleted"] == 2, r.text
        assert paths("/axb") == {"/axb/in"}
        r = c.post("/api/v1/trash/restore", json={"path": "/a_b"})
        assert r.status_code == 200, r.text
        assert paths("/a_b") == {"/a_b/in"}
        assert paths("/") == made - {"/a%b", "/a%b/in"} | {"/moved", "/moved/in"}
