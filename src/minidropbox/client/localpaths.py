"""Local path safety: names that come from the server are checked before they touch the disk.

A hostile or buggy server must not make ``get`` or ``sync`` write outside their target: every
segment of a server path is checked (``safe_join``: never absolute, never ``..``, no
separators or control characters, no drive letters), and every folder is resolved with its
symlinks before anything is created in it (``ensure_inside``).
"""

from __future__ import annotations

import os
from pathlib import Path

from minidropbox.core import errors
from minidropbox.core.paths import check_characters, path_key

TMP_PREFIX = ".minidropbox-tmp-"  # temp files of downloads; sync ignores and removes them
# A synced file sync is about to delete or replace, renamed aside first so that a write
# racing the check lands in the aside file (and is kept), never lost; sync ignores it.
ASIDE_PREFIX = ".minidropbox-aside-"
# An item halfway through a case-only rename (two renames on a case-insensitive disk).
RESPELL_PREFIX = ".minidropbox-respell-"


class UnsafeName(errors.MiniDropboxError):
    """The server sent a name that is not safe to write to this disk."""

    code = "unsafe_name"
    exit_code = 2


def _visible(name: str) -> bool:
    """No control, separator, bidi-override or invisible character (the server's rule)."""
    try:
        check_characters(name)
    except errors.InvalidPath:
        return False
    return True


def check_name(name: str) -> str:
    """Return ``name`` if it is safe as one local file name, else raise ``UnsafeName``."""
    bad = (name in ("", ".", "..") or "/" in name or "\\" in name
           or not _visible(name)
           or os.sep in name or (os.altsep is not None and os.altsep in name)
           # "C:x" is an ordinary name on POSIX but means "drive C" on Windows.
           or (os.name == "nt" and ":" in name))
    if bad:
        raise UnsafeName(f"Refusing to write a file named {name!r} from the server.")
    return name


def check_names(relative: str) -> None:
    """``check_name`` of every ``/``-separated segment of ``relative`` (``UnsafeName``
    names the first bad one). When no segment can be empty or start with a dot, one search
    over the whole path answers for all of them (a server listing asks for every entry)."""
    if (relative and os.name != "nt" and relative[0] not in "./" and relative[-1] != "/"
            and "//" not in relative and "/." not in relative and "\\" not in relative
            and _visible(relative)):
        return
    for part in relative.split("/"):
        check_name(part)


def safe_join(root: Path, relative: str) -> Path:
    """``root`` joined with a ``/``-separated relative path from the server, every segment
    checked: never absolute, never ``..``, never a backslash or drive letter."""
    if relative.startswith("/"):
        raise UnsafeName(f"Refusing the absolute path {relative!r} from the server.")
    return root.joinpath(*(check_name(part) for part in relative.split("/")))


def relative_remote(path: str, folder: str) -> str:
    """The part of remote ``path`` below remote ``folder`` ("" for the folder itself).

    Compared segment by segment (case-insensitively, as the server does) rather than by
    string prefix, so ``/Docsx`` is not inside ``/Docs`` and ``/Docs//x`` keeps its empty
    segment for ``safe_join`` to refuse.
    """
    if folder == "/":  # what the general case below gives for it
        if not path.startswith("/"):
            raise UnsafeName(f"The server listed {path!r}, which is not inside {folder!r}.")
        return path[1:]
    parts = path.split("/")[1:] if path != "/" else []
    prefix = folder.split("/")[1:]
    head = parts[: len(prefix)]
    if (not path.startswith("/") or len(parts) < len(prefix)
            or path_key("/".join(head)) != path_key("/".join(prefix))):
        raise UnsafeName(f"The server listed {path!r}, which is not inside {folder!r}.")
    return "/".join(parts[len(prefix) :])


def ensure_inside(root: Path, path: Path) -> None:
    """Refuse ``path`` if, with symlinks resolved, it lies outside ``root``."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise UnsafeName(f"Refusing to write {path}: it resolves outside {root}.")
