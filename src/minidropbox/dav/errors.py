"""The product's errors as WebDAV errors: same status, same message."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from wsgidav.dav_error import DAVError

from minidropbox.core.errors import MiniDropboxError

_last = threading.local()  # per worker thread: the last product error of its request


@contextmanager
def dav_errors() -> Iterator[None]:
    """Turn a ``MiniDropboxError`` into the ``DAVError`` with its status (404, 409, 507...).

    The product's error is remembered for the request too: where wsgidav renders the failure
    as a page of its own (a DELETE, COPY or MOVE), ``error_pages`` answers with its code."""
    try:
        yield
    except MiniDropboxError as exc:
        _last.error = exc
        raise DAVError(exc.status, context_info=exc.message) from exc


def forget_last_error() -> None:
    """At the start of a request: nothing of the previous one this thread served."""
    _last.error = None


def last_error() -> MiniDropboxError | None:
    """The last product error of this thread's request, if any."""
    error: MiniDropboxError | None = getattr(_last, "error", None)
    return error
