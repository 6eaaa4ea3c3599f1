"""The database handle: engine set-up, transactions, and migrations.

SQLite runs in WAL mode with foreign keys and a busy timeout. Writers start with
``BEGIN IMMEDIATE`` so two writers never deadlock upgrading a read lock; readers use plain
deferred transactions and see a consistent snapshot. Within one process, SQLite writers also
queue on a lock before ``BEGIN``: SQLite's busy handler polls with sleeps of 1 to 100 ms, so
writers that collide on the file lock would wait far longer than the fraction of a
millisecond a write transaction holds it. On PostgreSQL the same code runs at READ COMMITTED
and serialises where it matters with row locks (see ``namespaces.journal_head``).
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text

MIGRATIONS = Path(__file__).parent / "migrations"


class Database:
    """One engine and the two kinds of transaction the repositories use."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"future": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            kwargs["pool_size"] = 16
            kwargs["max_overflow"] = 16
        else:
            kwargs["pool_size"] = 10
            kwargs["max_overflow"] = 20
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        # Re-entrant, so a nested write in one thread behaves as it would without it.
        self._writer: threading.RLock | None = None
        if self.is_sqlite:
            _configure_sqlite(self.engine)
            self._writer = threading.RLock()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A read-write transaction, committed on success and rolled back on error."""
        with self._writer or contextlib.nullcontext(), self.engine.connect() as conn:
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction with a consistent snapshot."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def migrate(self) -> None:
        """Bring the schema up to date (safe to call on every start)."""
        if self.is_sqlite:
            # Retry: several processes of one cluster may start at once.
            for attempt in range(5):
                try:
                    _upgrade(self.engine)
                    return
                except Exception:
                    if attempt == 4:
                        raise
                    time.sleep(0.5)
        else:
            with self.engine.connect() as conn:
                # One migrator at a time across API replicas.
                conn.execute(text("SELECT pg_advisory_lock(724031)"))
                try:
                    _upgrade(self.engine)
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(724031)"))
                    conn.commit()

    def dispose(self) -> None:
        self.engine.dispose()


def _upgrade(engine: Engine) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def head_revision() -> str:
    """The newest migration this code knows (what ``migrate`` brings a database to)."""
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None, "the migration chain is empty"
    return head


def schema_revision(url: str) -> str | None:
    """The migration the database at ``url`` is at, None if it has no schema yet.

    Creates nothing: a SQLite file that does not exist is opened by nobody (else connecting
    would leave an empty database behind), an existing one is opened read-only. Errors
    reaching the database propagate.
    """
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is None or not path.exists():
            return None
        url = f"sqlite:///file:{path}?mode=ro&uri=true"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            # Read directly, not through alembic's MigrationContext, which logs at INFO on
            # every look (once a second while the service waits).
            if not inspect(conn).has_table("alembic_version"):
                return None
            revision: str | None = conn.execute(
                text("SELECT version_num FROM alembic_version")).scalar()
            return revision
    finally:
        engine.dispose()


_BEGIN = {"DEFERRED": "BEGIN DEFERRED", "IMMEDIATE": "BEGIN IMMEDIATE"}


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own handling is broken).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        # Straight to the driver: ``exec_driver_sql`` runs the whole statement machinery
        # (events, cursor wrapping, a result object) for a statement that returns nothing,
        # and every transaction of every request begins here.
        driver = conn.connection.driver_connection
        assert driver is not None  # a connection checked out of the pool, so open
        driver.execute(_BEGIN[mode])


_SAVEPOINT = "SAVEPOINT minidropbox_attempt"
_RELEASE = "RELEASE SAVEPOINT minidropbox_attempt"
_ROLLBACK_TO = "ROLLBACK TO SAVEPOINT minidropbox_attempt"


@contextmanager
def savepoint(conn: Connection) -> Iterator[None]:
    """A savepoint around the block, rolled back to if it raises: what
    ``conn.begin_nested()`` does, for a loop that takes one per item (a batch of commits).
    Straight to the driver, as ``BEGIN`` is: SQLAlchemy's savepoint builds, compiles and
    runs two statements through its whole machinery, which cost a small file's commit
    more than any of its own statements. SQLAlchemy's savepoints may nest inside; the
    name may repeat (the newest of a name is the one released or rolled back to)."""
    driver = conn.connection.driver_connection
    assert driver is not None  # a connection in a transaction, so open
    driver.execute(_SAVEPOINT)
    try:
        yield
    except BaseException:
        driver.execute(_ROLLBACK_TO)
        driver.execute(_RELEASE)
        raise
    driver.execute(_RELEASE)


def driver_fetchone(conn: Connection, sql: str, params: dict[str, Any]) -> Any:
    """The first row of a read statement (``:name`` parameters), straight to the driver, as
    ``BEGIN`` and savepoints are: for a small statement run on every request (the login
    throttle's), SQLAlchemy's machinery costs several times the query itself."""
    driver = conn.connection.driver_connection
    assert driver is not None  # a connection in a transaction, so open
    if conn.dialect.name != "sqlite":  # sqlite3 takes ``:name``; psycopg ``%(name)s``
        sql = _pyformat(sql)
    return driver.execute(sql, params).fetchone()


@functools.lru_cache(maxsize=64)
def _pyformat(sql: str) -> str:
    """``:name`` parameters as ``%(name)s`` (psycopg's style)."""
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql)


def sqlite_path(url: str) -> Path | None:
    """The file behind a ``sqlite:///`` URL (None for other databases)."""
    if not url.startswith("sqlite:///"):
        return None
    return Path(url[len("sqlite:///") :])
