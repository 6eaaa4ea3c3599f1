"""Statements with ``ON CONFLICT`` built once per dialect that has it (SQLite, PostgreSQL):
building one (``excluded`` is a new alias each time) costs more than running it for a small
file. Any other database gets none, and its callers fall back to row-by-row writes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

T = TypeVar("T")


def per_dialect(build: Callable[[Any], T]) -> dict[str, T]:
    """``build(insert)`` for each dialect's ``insert`` with ``on_conflict_*``."""
    return {"sqlite": build(sqlite.insert), "postgresql": build(postgresql.insert)}


def for_connection(built: dict[str, T], conn: Connection) -> T | None:
    """The statement(s) ``per_dialect`` built for ``conn``'s database, if it has them."""
    return built.get(conn.dialect.name)
