"""Sync's rules for touching the local folder: checked names, folders that stay inside the
root, and temp-file cleanup. The disk itself is behind ``LocalFolder``.

Everything written lands inside the sync root: names are built from checked segments
(``local_name``) and folders are resolved (``LocalFolder.is_inside``) before anything is
created, so neither a hostile server path nor a symlinked folder can send a write elsewhere.
"""

from __future__ import annotations

import contextlib
import errno
from dataclasses import dataclass, field

from minidropbox.client.localfolder import LocalFolder, join, parent_of
from minidropbox.client.localpaths import (
    ASIDE_PREFIX,
    RESPELL_PREFIX,
    TMP_PREFIX,
    UnsafeName,
    check_name,
)
from minidropbox.client.sync.state import STATE_DIR

# Where downloads are written before they are renamed into place: one folder outside the
# synced tree (as Dropbox's cache folder), so a folder moved or deleted while its downloads
# are in flight carries no temp file away, and one listing sweeps them all.
TEMP_DIR = f"{STATE_DIR}/tmp"


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


def sweep_temp_dir(folder: LocalFolder) -> int:
    """Empty ``TEMP_DIR`` (at the end of every round: nothing in it outlives one) and remove
    it, and the state folder too if nothing else is in it; returns how many files went."""
    try:
        children = folder.list(TEMP_DIR)
    except OSError:
        children = []  # none yet, or the process died between making the two folders
    removed = 0
    for child, info in children:
        if info.kind == "file":
            with contextlib.suppress(FileNotFoundError):
                folder.unlink(join(TEMP_DIR, child))
                removed += 1
    for name in (TEMP_DIR, STATE_DIR):
        with contextlib.suppress(OSError):
            folder.rmdir(name)  # only if empty: the state DB usually lives in STATE_DIR
    return removed


@dataclass
class Leftovers:
    """What interrupted syncs left in the folder, found in one walk (``leftovers``)."""

    temps: list[str] = field(default_factory=list)  # ``TMP_PREFIX`` files, anywhere
    # Items halfway through a case-only rename (none inside another: it is finished first).
    respells: list[str] = field(default_factory=list)
    asides: list[str] = field(default_factory=list)  # ``ASIDE_PREFIX`` files, anywhere


def leftovers(folder: LocalFolder, name: str = "") -> Leftovers:
    """Every temp, respell and aside item under ``name``, in walk order (folders sorted by
    name), from one walk that asks only for names and kinds (``LocalFolder.kinds``): this
    runs at every start, over the whole tree."""
    found = Leftovers()
    _leftovers(folder, name, found, in_respell=False)
    return found


def _leftovers(folder: LocalFolder, name: str, found: Leftovers, *, in_respell: bool) -> None:
    try:
        children = folder.kinds(name)
    except OSError:
        return
    for child, kind in children:
        path = join(name, child)
        respell = child.startswith(RESPELL_PREFIX) and kind in ("file", "folder")
        if respell and not in_respell:
            found.respells.append(path)
        if kind == "folder":
            _leftovers(folder, path, found, in_respell=in_respell or respell)
        elif kind == "file":
            if child.startswith(TMP_PREFIX):
                found.temps.append(path)
            elif child.startswith(ASIDE_PREFIX):
                found.asides.append(path)


def remove_temps(folder: LocalFolder, temps: list[str]) -> int:
    """Remove the temp files ``leftovers`` found (a crash left them, in ``TEMP_DIR`` or
    beside their targets as older versions wrote them); how many went."""
    removed = 0
    for path in temps:
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
    return leftovers(folder, name).asides


def finish_respells(folder: LocalFolder, respells: list[str] | None = None) -> list[str]:
    """Give every item a crash left halfway through a case-only rename (``respells``, as
    ``leftovers`` found them; looked for if None) its new name (or a free one beside it);
    the names they got."""
    done = []
    for name in leftovers(folder).respells if respells is None else respells:
        leaf = name.rsplit("/", 1)[-1][len(RESPELL_PREFIX):]
        done.append(put_back(folder, name, join(parent_of(name), leaf)))
    return done
