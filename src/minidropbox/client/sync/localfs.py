"""Local disk operations for sync that never clobber: each checks, then acts atomically.

Everything written lands inside the sync root: targets are built from checked names
(``safe_join``) and their folders are resolved (``ensure_inside``) before anything is created,
so neither a hostile server path nor a symlinked folder can send a write elsewhere.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import sys
from collections.abc import Callable
from pathlib import Path

from minidropbox.client.localpaths import TMP_PREFIX, ensure_inside, safe_join
from minidropbox.durable import fsync_dir_best_effort


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
    fsync_dir_best_effort(folder)


def _libc_renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func: Callable[..., int] = libc.renameat2
    except (OSError, AttributeError):
        return None
    return func


_RENAMEAT2 = _libc_renameat2()
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def _rename_noreplace(src: Path, dst: Path) -> bool:
    """Atomically rename unless ``dst`` exists; False if this system cannot do that."""
    if _RENAMEAT2 is None:
        return False
    rc = _RENAMEAT2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst),
                    _RENAME_NOREPLACE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err == errno.EEXIST:
        raise FileExistsError(errno.EEXIST, "exists", str(dst))
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False  # the file system does not support it
    raise OSError(err, os.strerror(err), str(src))


def place_new(tmp: Path, target: Path) -> None:
    """Give ``tmp`` the name ``target`` only if nothing has that name (``FileExistsError``).

    One atomic step where the system allows it, so a crash leaves either the old name or the
    new one, never both (which the next round would see as two files).
    """
    if _rename_noreplace(tmp, target):
        return
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
    """Rename ``src`` (a file or a folder) to ``dst`` unless ``dst`` exists."""
    if src.is_dir() and not src.is_symlink():
        if _rename_noreplace(src, dst):
            return
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
