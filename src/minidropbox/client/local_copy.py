"""Is a local file already what ``get`` would write, or would writing it lose work?

``get`` onto an existing file asks this first (rclone's and rsync's quick check, then the
content): the same size and mtime, or the same content hash, is ``SAME`` and nothing is
fetched. Other content that some version on the server holds is ``OLDER`` (an earlier
download: replacing it loses nothing, history keeps it). Content the server has never seen
is ``EDITED``: only ``--force`` replaces it.
"""

from __future__ import annotations

import enum
from pathlib import Path

from minidropbox.client.remote import Remote
from minidropbox.client.values import Entry
from minidropbox.core import errors
from minidropbox.core.chunking import content_hash, iter_chunks

MTIME_SLACK = 0.001  # seconds; downloads set the server's mtime, some filesystems round it


class LocalCopy(enum.Enum):
    ABSENT = "absent"
    SAME = "same"
    OLDER = "older"
    EDITED = "edited"


class LocalEdits(errors.Conflict):
    """The local file has content the server has never had; --force replaces it."""

    code = "local_edits"


def file_content_hash(path: Path) -> tuple[int, str]:
    """Size and content hash of a local file, cut and hashed as the server does."""
    hashes: list[str] = []
    size = 0
    with path.open("rb", buffering=0) as fh:
        for ref, _ in iter_chunks(fh):
            hashes.append(ref.hash)
            size += ref.length
    return size, content_hash(hashes)


def compare_local(remote: Remote, entry: Entry, dest: Path) -> LocalCopy:
    """What the file at ``dest`` is, compared with ``entry`` (the version to download)."""
    try:
        info = dest.stat()
    except FileNotFoundError:
        return LocalCopy.ABSENT
    if not dest.is_file():
        return LocalCopy.ABSENT  # a folder there is refused by the download itself
    if (info.st_size == entry.size and entry.modified is not None
            and abs(info.st_mtime - entry.modified) < MTIME_SLACK):
        return LocalCopy.SAME
    size, digest = file_content_hash(dest)
    if size == entry.size and digest == entry.content_hash:
        return LocalCopy.SAME
    history = remote.versions(entry.path)
    if any(v.content_hash == digest and v.size == size for v in history):
        return LocalCopy.OLDER
    return LocalCopy.EDITED
