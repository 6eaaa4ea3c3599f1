"""Dead properties (PROPPATCH) in the metadata database, per namespace and path.

wsgidav hands us reference URLs (``/<namespace>/<path>``, see ``provider.ref_url``); rows
are keyed by namespace and the path's comparison key, so ``A.txt`` and ``a.txt`` — one entry
here — share their properties, and a MOVE or COPY carries a whole subtree's along. Each
resource holds at most ``MAX_PER_RESOURCE`` properties (the PROPPATCH body is capped
separately), so a client cannot grow the table without bound.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import unquote

from sqlalchemy import Connection
from wsgidav.dav_error import DAVError

from minidropbox.core.paths import path_key
from minidropbox.metadata import dav as repo
from minidropbox.metadata.db import Database

MAX_PER_RESOURCE = 200


def _split(url: str) -> tuple[int, str]:
    """``/<namespace>/a/b/`` -> (namespace, key of ``/a/b``)."""
    rest = unquote(url).strip("/")
    namespace, _, path = rest.partition("/")
    return int(namespace), path_key("/" + path)


class DbPropertyManager:
    """wsgidav's property-manager interface over the ``dav_properties`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _reading(self, environ: Any) -> AbstractContextManager[Connection]:
        """The request's read transaction (``DavSession.reading``), else a new one."""
        session = environ.get("minidropbox.dav") if isinstance(environ, dict) else None
        return session.reading() if session is not None else self.db.read()

    def get_properties(self, norm_url: str, environ: Any = None) -> list[str]:
        ns, key = _split(norm_url)
        with self._reading(environ) as conn:
            return list(repo.properties(conn, ns, key))

    def get_property(self, norm_url: str, name: str, environ: Any = None) -> str | None:
        ns, key = _split(norm_url)
        with self._reading(environ) as conn:
            return repo.properties(conn, ns, key).get(name)

    def write_property(self, norm_url: str, name: str, property_value: Any,
                       dry_run: bool = False, environ: Any = None) -> None:
        ns, key = _split(norm_url)
        value = (property_value.decode() if isinstance(property_value, bytes)
                 else str(property_value))
        if len(name) > 512:
            raise DAVError(400, context_info="Property names are at most 512 characters.")
        with self.db.write() as conn:
            existing = repo.properties(conn, ns, key)
            if name not in existing and len(existing) >= MAX_PER_RESOURCE:
                raise DAVError(507, context_info=f"A resource holds at most "
                                                 f"{MAX_PER_RESOURCE} properties.")
            if not dry_run:
                repo.set_property(conn, ns, key, name, value)

    def remove_property(self, norm_url: str, name: str, dry_run: bool = False,
                        environ: Any = None) -> None:
        if dry_run:
            return
        ns, key = _split(norm_url)
        with self.db.write() as conn:
            repo.remove_property(conn, ns, key, name)

    def remove_properties(self, norm_url: str, environ: Any = None) -> None:
        ns, key = _split(norm_url)
        with self.db.write() as conn:
            repo.remove_subtree(conn, ns, key)

    def copy_properties(self, src_url: str, dest_url: str, environ: Any = None) -> None:
        self._carry(src_url, dest_url, with_children=False, move=False)

    def move_properties(self, src_url: str, dest_url: str, with_children: bool,
                        environ: Any = None) -> None:
        self._carry(src_url, dest_url, with_children=with_children, move=True)

    def _carry(self, src_url: str, dest_url: str, with_children: bool, move: bool) -> None:
        ns, src = _split(src_url)
        _, dest = _split(dest_url)
        if src == dest:
            return
        with self.db.write() as conn:
            repo.copy_subtree(conn, ns, src, dest, with_children, move)
