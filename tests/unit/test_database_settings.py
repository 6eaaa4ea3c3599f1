"""The metadata database given in parts (as compose.yaml does): any character in any part
survives into the URL SQLAlchemy parses and into the connection string libpq and pg_dump
parse."""

from __future__ import annotations

from pathlib import Path

import pytest
from _pytest.monkeypatch import MonkeyPatch
from hypothesis import given
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import make_url

from minidropbox.cli.server import installation_settings
from minidropbox.core.errors import NotFound
from minidropbox.metadata.pg import libpq_conninfo
from minidropbox.settings import Settings

NASTY = "p@ss:w/rd#?% &x='\"\\"
# libpq stops a value at NUL; everything else printable must survive.
secrets = st.text(st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=40)


def parts(password: str, user: str = "mini dropbox") -> Settings:
    return Settings(database_host="postgres", database_port=5433, database_user=user,
                    database_password=password, database_name="minidropbox")


def test_parts_make_a_postgres_url_that_keeps_every_character() -> None:
    url = parts(NASTY).effective_database_url
    assert url.startswith("postgresql+psycopg://")
    parsed = make_url(url)
    assert (parsed.username, parsed.password, parsed.host, parsed.port, parsed.database) == (
        "mini dropbox", NASTY, "postgres", 5433, "minidropbox")
    conninfo = conninfo_to_dict(libpq_conninfo(url))
    assert conninfo == {"host": "postgres", "port": "5433", "user": "mini dropbox",
                        "password": NASTY, "dbname": "minidropbox"}
    # pg_dump gets it without the password (a command line shows in ps): PGPASSWORD has it.
    assert "password" not in conninfo_to_dict(libpq_conninfo(url, with_password=False))


@given(password=secrets, user=secrets)
def test_any_password_and_user_round_trip(password: str, user: str) -> None:
    conninfo = conninfo_to_dict(libpq_conninfo(parts(password, user).effective_database_url))
    assert (conninfo["password"], conninfo["user"]) == (password, user)


def test_an_explicit_url_wins_and_sqlite_stays_the_default(tmp_path: Path) -> None:
    explicit = "postgresql+psycopg://a:b@db:5432/x"
    settings = Settings(database_url=explicit, database_host="ignored")
    assert settings.effective_database_url == explicit
    assert Settings(data_dir=tmp_path).effective_database_url.startswith("sqlite:///")
    query = "postgresql+psycopg://a:b@db/x?sslmode=require&connect_timeout=5"
    assert conninfo_to_dict(libpq_conninfo(query)) == {
        "host": "db", "user": "a", "password": "b", "dbname": "x", "sslmode": "require",
        "connect_timeout": "5"}


def test_operator_commands_accept_postgres_given_in_parts(tmp_path: Path,
                                                          monkeypatch: MonkeyPatch) -> None:
    """compose's backup and grant-admin: the database in parts, no metadata.db in /data."""
    monkeypatch.setenv("MINIDROPBOX_DATABASE_HOST", "postgres")
    settings = installation_settings(tmp_path)
    assert settings.effective_database_url.startswith("postgresql+psycopg://")
    monkeypatch.delenv("MINIDROPBOX_DATABASE_HOST")
    with pytest.raises(NotFound):  # on SQLite a missing database is still refused
        installation_settings(tmp_path)
