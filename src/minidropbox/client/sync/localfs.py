"""Local disk operations for sync that never clobber: each checks, then acts atomically.

Everything written lands inside the sync root: targets are built from checked names
(``safe_join``) and their folders are resolved (``ensure_inside``) before anything is created,
so neither a hostile server path nor a symlinked folder can send a write elsewhere.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from minidropbox.client.transfer import TMP_PREFIX, ensure_inside, safe_join


def local_path(root: Path, rel: str) -> Path:
    """The local path of a sync-relative path, every segment checked."""
    return root if rel == "/" else safe_join(root, rel.lstrip("/"))


def make_folder(root: Path, folder: Path) -> None:
    """Create ``folder`` and its parents, refusing any that resolve outside ``root``."""
    missing: list[Path] = []
    current = folder
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    ensure_inside(root, current)
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            path.mkdir()
        ensure_inside(root, path)


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def place_new(tmp: Path, target: Path) -> None:
    """Give ``tmp`` the name ``target`` only if nothing has that name (``FileExistsError``)."""
    try:
        os.link(tmp, target)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            raise FileExistsError(errno.EEXIST, "exists", str(target)) from exc
        # No hard links here (some network or FAT disks): check, then rename.
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "exists", str(target)) from exc
        os.rename(tmp, target)
        return
    os.unlink(tmp)


def rename_new(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst`` unless ``dst`` exists (``FileExistsError``)."""
    if src.is_dir() and not src.is_symlink():
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "exists", str(dst))
        os.rename(src, dst)
    else:
        place_new(src, dst)


def clean_temp_files(root: Path) -> int:
    """Remove ``.minidropbox-tmp-*`` files a crash left behind; returns how many."""
    removed = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
        for name in filenames:
            if name.startswith(TMP_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(dirpath, name))
                    removed += 1
    return removed
