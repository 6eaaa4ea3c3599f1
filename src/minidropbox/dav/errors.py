"""The product's errors as WebDAV errors: same status, same message."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from wsgidav.dav_error import DAVError

from minidropbox.core.errors import MiniDropboxError


@contextmanager
def dav_errors() -> Iterator[None]:
    """Turn a ``MiniDropboxError`` into the ``DAVError`` with its status (404, 409, 507...)."""
    try:
        yield
    except MiniDropboxError as exc:
        raise DAVError(exc.status, context_info=exc.message) from exc
