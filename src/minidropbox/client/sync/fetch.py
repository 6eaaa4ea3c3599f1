"""Fetch one version of a server file into a verified temp file next to where it will go.

The temp file (``.minidropbox-tmp-*``, ignored by sync and removed at start if a crash left
it) is checked against the size and content hash of the version the plan named, fsynced, and
given the server's mtime (from the listing, or, for a file the journal announced, the
``Last-Modified`` header, to the second); only then may the executor rename it into place.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

from minidropbox.client.api import ApiClient
from minidropbox.client.sync.scanner import hash_file, stat_of
from minidropbox.client.sync.state import LocalStat
from minidropbox.client.transfer import TMP_PREFIX, DownloadMismatch
from minidropbox.core.reconcile import Item

MiB = 1024 * 1024


def fetch_version(api: ApiClient, remote_path: str, want: Item, folder: Path,
                  mtime: float | None) -> tuple[Path, LocalStat]:
    """Download version ``want.version`` of ``remote_path`` into a temp file in ``folder``;
    returns the temp file and its stat. Raises ``DownloadMismatch`` on any disagreement."""
    tmp = folder / f"{TMP_PREFIX}{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        written = 0
        with os.fdopen(fd, "wb") as fh, api.stream(
                "GET", "/api/v1/files/content",
                params={"path": remote_path, "version": want.version}) as response:
            if mtime is None:
                mtime = _last_modified(response.headers.get("last-modified"))
            for block in response.iter_bytes(MiB):
                fh.write(block)
                written += len(block)
            fh.flush()
            os.fsync(fh.fileno())
        if written != want.size:
            raise DownloadMismatch(f"{want.path}: got {written} bytes, expected {want.size}.")
        hashed = hash_file(tmp)
        if hashed is None or hashed[0] != want.hash:
            raise DownloadMismatch(f"{want.path}: the bytes do not match the content hash.")
        if mtime is not None:
            os.utime(tmp, ns=(time.time_ns(), int(mtime * 1e9)))
        return tmp, stat_of(os.stat(tmp))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _last_modified(header: str | None) -> float | None:
    if not header:
        return None
    with contextlib.suppress(TypeError, ValueError):
        return parsedate_to_datetime(header).timestamp()
    return None
