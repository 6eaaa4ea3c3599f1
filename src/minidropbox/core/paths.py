"""Path rules: what a valid path is, and how paths compare.

Paths are ``/``-separated and absolute (``/Docs/a.txt``); the root is ``/``. They are stored
NFC-normalised with case preserved, and compared by ``path_key`` (NFC + casefold), so ``A.txt``
and ``a.txt`` cannot both exist, as on macOS and Windows clients.
"""

from __future__ import annotations

import unicodedata

from minidropbox.core.errors import InvalidPath

MAX_PATH_BYTES = 4096
MAX_SEGMENT_BYTES = 255


def normalize_path(raw: str) -> str:
    """Return the canonical form of a user-supplied path, or raise ``InvalidPath``.

    A missing leading slash is added and a single trailing slash dropped; everything else
    that is ambiguous or dangerous (``..``, ``.``, empty segments, backslashes, NUL and
    control characters, Windows drive letters, over-long names) is refused rather than guessed.
    """
    if not isinstance(raw, str):
        raise InvalidPath("Path must be a string.")
    path = unicodedata.normalize("NFC", raw)
    if path in ("", "/"):
        return "/"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        raise InvalidPath("Path contains a control character.")
    if "\\" in path:
        raise InvalidPath("Path contains a backslash; use '/' to separate folders.")
    if len(path) >= 2 and path[1] == ":" and path[0].isalpha():
        raise InvalidPath("Windows drive paths are not allowed; use '/folder/name'.")
    if not path.startswith("/"):
        path = "/" + path
    if path.endswith("/"):
        path = path[:-1]
    if len(path.encode("utf-8")) > MAX_PATH_BYTES:
        raise InvalidPath(f"Path is longer than {MAX_PATH_BYTES} bytes.")
    for segment in path[1:].split("/"):
        if segment == "":
            raise InvalidPath("Path contains an empty segment ('//').")
        if segment in (".", ".."):
            raise InvalidPath("Path segments '.' and '..' are not allowed.")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise InvalidPath(f"A name in the path is longer than {MAX_SEGMENT_BYTES} bytes.")
    return path


def path_key(path: str) -> str:
    """The comparison key of a normalised path: equal keys mean the same entry."""
    return unicodedata.normalize("NFC", path).casefold()


def parent_of(path: str) -> str:
    """The parent folder of a normalised path (the root is its own parent)."""
    if path == "/":
        return "/"
    head = path.rsplit("/", 1)[0]
    return head or "/"


def name_of(path: str) -> str:
    """The last segment of a normalised path ("" for the root)."""
    return path.rsplit("/", 1)[-1]


def join(folder: str, name: str) -> str:
    """Join a normalised folder path and a name."""
    return ("" if folder == "/" else folder) + "/" + name


def ancestors(path: str) -> list[str]:
    """Every folder above ``path``, outermost first, excluding the root."""
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def is_within(path: str, folder: str) -> bool:
    """True if ``path`` is ``folder`` itself or lies under it (case-insensitively)."""
    if folder == "/":
        return True
    key, fkey = path_key(path), path_key(folder)
    return key == fkey or key.startswith(fkey + "/")


def rebase(path: str, old_prefix: str, new_prefix: str) -> str:
    """Replace the folder prefix ``old_prefix`` of ``path`` with ``new_prefix``."""
    if path_key(path) == path_key(old_prefix):
        return new_prefix
    tail = path[len(old_prefix) :] if old_prefix != "/" else path
    return ("" if new_prefix == "/" else new_prefix) + tail
