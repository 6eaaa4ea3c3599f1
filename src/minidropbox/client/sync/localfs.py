"""Sync's rules for touching the local folder: checked names, folders that stay inside the
root, and temp-file cleanup. The disk itself is behind ``LocalFolder``.

Everything written lands inside the sync root: names are built from checked segments
(``local_name``) and folders are resolved (``LocalFolder.is_inside``) before anything is
created, so neither a hostile server path nor a symlinked folder can send a write elsewhere.
"""

from __future__ import annotations

import contextlib
import errno

from minidropbox.client.localfolder import LocalFolder, join, parent_of
from minidropbox.client.localpaths import ASIDE_PREFIX, TMP_PREFIX, UnsafeName, check_name


def local_name(rel: str) -> str:
    """The folder name of a sync-relative path (``/a/b.txt`` -> ``a/b.txt``), every segment
    checked; the root is ``""``."""
    if rel == "/":
        return ""
    return "/".join(check_name(part) for part in rel.lstrip("/").split("/"))


def ensure_inside(folder: LocalFolder, name: str) -> None:
    """Refuse ``name`` if, with symlinks resolved, it lies outside the folder."""
    if not folder.is_inside(name):
        raise UnsafeName(f"Refusing to write {name}: it resolves outside the sync folder.")


def _exists(folder: LocalFolder, name: str) -> bool:
    try:
        folder.info(name)
    except FileNotFoundError:
        return False
    return True


def make_folder(folder: LocalFolder, name: str) -> None:
    """Create the folder ``name`` and its parents, refusing any that resolve outside."""
    missing: list[str] = []
    current = name
    while current and not _exists(folder, current):
        missing.append(current)
        current = parent_of(current)
    ensure_inside(folder, current)
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(path)
        ensure_inside(folder, path)


def clean_temp_files(folder: LocalFolder, name: str = "") -> int:
    """Remove ``.minidropbox-tmp-*`` files a crash left behind; returns how many."""
    removed = 0
    try:
        children = folder.list(name)
    except OSError:
        return 0
    for child, info in children:
        path = join(name, child)
        if info.kind == "folder":
            removed += clean_temp_files(folder, path)
        elif child.startswith(TMP_PREFIX) and info.kind == "file":
            with contextlib.suppress(FileNotFoundError):
                folder.unlink(path)
                removed += 1
    return removed


def put_back(folder: LocalFolder, aside: str, name: str) -> str:
    """Give a file set aside its name back, or, if that is taken now, a free name beside it
    (``name (set aside N)``); the name it got."""
    for n in range(1, 1000):
        if n == 1:
            target = name
        else:
            stem, dot, ext = name.rpartition(".") if "." in name.rsplit("/", 1)[-1] \
                else (name, "", "")
            target = f"{stem} (set aside {n}){dot}{ext}"
        try:
            folder.rename(aside, target, replace=False)
            return target
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free name", name)


def set_aside_files(folder: LocalFolder, name: str = "") -> list[str]:
    """Every ``ASIDE_PREFIX`` file under ``name``."""
    found: list[str] = []
    try:
        children = folder.list(name)
    except OSError:
        return found
    for child, info in children:
        path = join(name, child)
        if info.kind == "folder":
            found.extend(set_aside_files(folder, path))
        elif child.startswith(ASIDE_PREFIX) and info.kind == "file":
            found.append(path)
    return found
