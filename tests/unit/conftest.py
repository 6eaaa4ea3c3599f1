"""Fixtures of the unit tests that run statements against a real metadata database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from minidropbox.metadata.db import Database
from tests.harness import new_postgres_database, postgres_url

URLS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    postgres_url() is None, reason="no test PostgreSQL (MINIDROPBOX_TEST_POSTGRES_URL)"))]


@pytest.fixture(params=URLS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated metadata database: a SQLite file, and, when the test server is there, a
    PostgreSQL database of its own (other tests' clusters share the server)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'meta.db'}"
    else:
        base = postgres_url()
        assert base is not None
        url = new_postgres_database(base)
    database = Database(url)
    database.migrate()
    yield database
    database.dispose()
