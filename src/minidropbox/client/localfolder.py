"""The local disk behind a small interface, after syncthing's ``lib/fs``: the sync scanner and
executor, uploads and downloads touch files only through a ``LocalFolder``.

``RealFolder`` is the disk. ``client/fakefolder.py`` has an in-memory folder (seeded, optionally
case-insensitive) and a faulty wrapper (fail the next rename with ENOSPC, crash right after
an operation), so the real executor can be tested against them in milliseconds.

Names inside a folder are ``/``-separated relative paths as they are on disk, with no leading
slash; ``""`` is the folder itself. They are trusted here: whoever builds one from a server
path checks its segments first (``localpaths.safe_join`` / ``sync.localfs.local_name``).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import os
import secrets
import stat as stat_mod
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from minidropbox.client.localpaths import TMP_PREFIX
from minidropbox.durable import fsync_dir_best_effort

FileKind = Literal["file", "folder", "symlink", "other"]
Written = list[str | OSError]  # per file written: its name, or what kept it from being written
Kinds = list[tuple[str, FileKind]]  # (child name, kind) for each child of a folder
OPEN_AT_ONCE = 128  # files ``RealFolder.write_temps`` holds open before fsyncing them


@dataclass(frozen=True)
class FileInfo:
    """What ``lstat`` says about a name (symlinks are not followed)."""

    kind: FileKind
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int


class Reader(Protocol):
    """An open file: read it in pieces (``readinto``, for the chunker) or whole, and ask what
    it is now (``info``: ``fstat`` of the open file, not of the name)."""

    def readinto(self, buffer: memoryview, /) -> int: ...  # pragma: no cover

    def read(self) -> bytes: ...  # pragma: no cover

    def info(self) -> FileInfo: ...  # pragma: no cover


class Writer(Protocol):
    def write(self, data: bytes | memoryview, /) -> int: ...  # pragma: no cover


class LocalFolder(Protocol):
    """A folder of files and folders. The contract every implementation keeps:

    - ``info(name)`` is ``lstat``; ``FileNotFoundError`` if nothing has that name (also when
      a parent is missing or is a file).
    - ``list(name)``: ``(child name, info)`` for each child, sorted by name; a child that
      vanishes while listing is left out. ``FileNotFoundError`` if the folder is gone, another
      ``OSError`` (``PermissionError``) if it cannot be read.
    - ``kinds(name)``: ``(child name, kind)`` for each child, sorted by name, as ``list``
      says them but without the rest of each child's stat (a walk that looks only for
      names, such as the one for what a crash left behind, costs no ``lstat`` per file).
    - ``open_read(name)``: a ``Reader``; ``FileNotFoundError`` if missing.
    - ``create_temp(folder)``: a new empty ``TMP_PREFIX`` file in ``folder``, never one that
      existed; returns its name.
    - ``open_write(name)``: truncates and writes an existing file; when the block ends
      without an exception the bytes are durable (fsync).
    - ``set_mtime(name, mtime_ns)``.
    - ``write_temps(folder, contents)``: for each ``(bytes, mtime_ns)`` a new ``TMP_PREFIX``
      file in ``folder`` holding them with that mtime, all durable when it returns; per file
      its name or the ``OSError`` that kept it from being written (then nothing of it is
      left). ``write_temps_one_by_one`` is the plain form (create, write, fsync, set mtime).
    - ``mkdir(name)``: ``FileExistsError`` if the name is taken, ``FileNotFoundError`` if the
      parent is missing.
    - ``rename(src, dst, replace=...)`` is atomic. ``replace=False`` never clobbers:
      ``FileExistsError`` if ``dst`` exists, and a crash leaves either name, never both.
      ``replace=True`` replaces a file at ``dst``. Renaming changes the ctime, not the inode.
    - ``unlink(name)`` removes a file; ``rmdir(name)`` an empty folder (``OSError`` with
      ENOTEMPTY otherwise). Both ``FileNotFoundError`` if missing.
    - ``fsync_dir(name)`` makes the renames and creations in that folder durable, as far
      as the platform allows (never raises for lack of support).
    - ``is_inside(name)``: whether the name, symlinks resolved, still lies in this folder.
    - Any operation may raise ``OSError`` (ENOSPC, EACCES, EIO): the caller must then leave
      things as they were or in a state the next round recognises.
    """

    def info(self, name: str) -> FileInfo: ...  # pragma: no cover

    def list(self, name: str) -> list[tuple[str, FileInfo]]: ...  # pragma: no cover

    def kinds(self, name: str) -> Kinds: ...  # pragma: no cover

    def open_read(self, name: str) -> AbstractContextManager[Reader]: ...  # pragma: no cover

    def create_temp(self, folder: str) -> str: ...  # pragma: no cover

    def open_write(self, name: str) -> AbstractContextManager[Writer]: ...  # pragma: no cover

    def set_mtime(self, name: str, mtime_ns: int) -> None: ...  # pragma: no cover

    def write_temps(self, folder: str, contents: Sequence[tuple[bytes, int]],
                    ) -> Written: ...  # pragma: no cover

    def mkdir(self, name: str) -> None: ...  # pragma: no cover

    def rename(self, src: str, dst: str, *, replace: bool) -> None: ...  # pragma: no cover

    def unlink(self, name: str) -> None: ...  # pragma: no cover

    def rmdir(self, name: str) -> None: ...  # pragma: no cover

    def fsync_dir(self, name: str) -> None: ...  # pragma: no cover

    def is_inside(self, name: str) -> bool: ...  # pragma: no cover


def join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def parent_of(name: str) -> str:
    return name.rsplit("/", 1)[0] if "/" in name else ""


def temp_name() -> str:
    return f"{TMP_PREFIX}{secrets.token_hex(8)}"


def write_temps_one_by_one(folder: LocalFolder, into: str,
                           contents: Sequence[tuple[bytes, int]]) -> Written:
    """``LocalFolder.write_temps`` made of the folder's own steps, file by file: create,
    write and fsync, set the mtime (the fake folders' way, each step one of theirs)."""
    out: list[str | OSError] = []
    for data, mtime_ns in contents:
        try:
            tmp = folder.create_temp(into)
        except OSError as exc:
            out.append(exc)
            continue
        try:
            with folder.open_write(tmp) as fh:
                fh.write(data)
            folder.set_mtime(tmp, mtime_ns)
        except OSError as exc:  # a full disk: this file fails, like any download would
            with contextlib.suppress(FileNotFoundError):
                folder.unlink(tmp)
            out.append(exc)
            continue
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                folder.unlink(tmp)
            raise
        out.append(tmp)
    return out


def info_of(st: os.stat_result) -> FileInfo:
    mode = st.st_mode
    kind: FileKind = ("folder" if stat_mod.S_ISDIR(mode) else "file" if stat_mod.S_ISREG(mode)
                      else "symlink" if stat_mod.S_ISLNK(mode) else "other")
    return FileInfo(kind, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class _FileReader:
    def __init__(self, fh: io.BufferedReader) -> None:
        self.fh = fh

    def readinto(self, buffer: memoryview, /) -> int:
        return self.fh.readinto(buffer)

    def read(self) -> bytes:
        return self.fh.read()

    def info(self) -> FileInfo:
        return info_of(os.fstat(self.fh.fileno()))


class RealFolder:
    """A folder on this machine's disk."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root = os.fspath(root)

    def path(self, name: str) -> str:
        # A plain string (an absolute ``name`` stands alone, as with ``Path``): a sync
        # touches each file's name several times, and building a ``Path`` each time was a
        # tenth of the CPU a small download costs.
        return os.path.join(self._root, name) if name else self._root

    def info(self, name: str) -> FileInfo:
        try:
            return info_of(os.stat(self.path(name), follow_symlinks=False))
        except NotADirectoryError as exc:
            raise FileNotFoundError(errno.ENOENT, "not found", name) from exc

    def list(self, name: str) -> list[tuple[str, FileInfo]]:
        out = []
        for entry in sorted(os.scandir(self.path(name)), key=lambda e: e.name):
            try:
                out.append((entry.name, info_of(entry.stat(follow_symlinks=False))))
            except FileNotFoundError:
                continue
        return out

    def kinds(self, name: str) -> Kinds:
        # The kind comes with the listing (``d_type``) on most file systems; ``DirEntry``
        # stats only where it does not.
        out: Kinds = []
        with os.scandir(self.path(name)) as entries:
            for entry in entries:
                try:
                    kind: FileKind = (
                        "symlink" if entry.is_symlink()
                        else "folder" if entry.is_dir(follow_symlinks=False)
                        else "file" if entry.is_file(follow_symlinks=False) else "other")
                except FileNotFoundError:
                    continue
                out.append((entry.name, kind))
        out.sort()
        return out

    @contextlib.contextmanager
    def open_read(self, name: str) -> Iterator[Reader]:
        with open(self.path(name), "rb") as fh:
            yield _FileReader(fh)

    def create_temp(self, folder: str) -> str:
        name = join(folder, temp_name())
        os.close(os.open(self.path(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        return name

    @contextlib.contextmanager
    def open_write(self, name: str) -> Iterator[Writer]:
        with open(self.path(name), "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())

    def set_mtime(self, name: str, mtime_ns: int) -> None:
        os.utime(self.path(name), ns=(time.time_ns(), mtime_ns))

    def write_temps(self, folder: str, contents: Sequence[tuple[bytes, int]],
                    ) -> Written:
        """Every file written (one open, write and ``futimens`` each), then each fsynced: the
        first fsync's journal commit takes the others' data with it, where an fsync right
        after each write cost a commit per small file (half a millisecond of a sync's
        download time each). Unlike ``syncfs`` this flushes nothing but these files, and
        each fsync reports its own file's write-back error. At most ``OPEN_AT_ONCE`` open."""
        out: Written = []
        for start in range(0, len(contents), OPEN_AT_ONCE):
            written: list[tuple[int, str, int]] = []  # (index in out, name, open fd)
            done = False
            try:
                for data, mtime_ns in contents[start:start + OPEN_AT_ONCE]:
                    made = self._write_unsynced(folder, data, mtime_ns)
                    if isinstance(made, OSError):
                        out.append(made)
                        continue
                    written.append((len(out), *made))
                    out.append(made[0])
                for i, _, fd in written:
                    try:
                        os.fsync(fd)
                    except OSError as exc:  # its bytes may not be on disk: it failed
                        out[i] = exc
                done = True
            finally:
                for i, name, fd in written:
                    os.close(fd)
                    if not done or not isinstance(out[i], str):
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(self.path(name))
        return out

    def _write_unsynced(self, folder: str, data: bytes,
                        mtime_ns: int) -> tuple[str, int] | OSError:
        """A new temp file in ``folder`` holding ``data`` with ``mtime_ns``, still open (its
        name and fd), or the error that kept it from being written (nothing left of it)."""
        name = join(folder, temp_name())
        try:
            fd = os.open(self.path(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                         0o666)
        except OSError as exc:
            return exc
        try:
            _write_all(fd, data)
            os.utime(fd, ns=(time.time_ns(), mtime_ns))
        except BaseException as exc:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(name))
            if isinstance(exc, OSError):
                return exc
            raise
        return name, fd

    def mkdir(self, name: str) -> None:
        os.mkdir(self.path(name))

    def rename(self, src: str, dst: str, *, replace: bool) -> None:
        source, target = self.path(src), self.path(dst)
        if replace:
            os.replace(source, target)
        elif stat_mod.S_ISDIR(os.lstat(source).st_mode):
            _rename_folder_noreplace(source, target)
        else:
            _place_new(source, target)

    def unlink(self, name: str) -> None:
        os.unlink(self.path(name))

    def rmdir(self, name: str) -> None:
        os.rmdir(self.path(name))

    def fsync_dir(self, name: str) -> None:
        fsync_dir_best_effort(self.path(name))

    def is_inside(self, name: str) -> bool:
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(self.path(name))
        return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# -- renames that never clobber ----------------------------------------------------------------

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


def _rename_noreplace(src: str, dst: str) -> bool:
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


def _place_new(src: str, dst: str) -> None:
    """Give the file ``src`` the name ``dst`` only if nothing has that name.

    One atomic step where the system allows it, so a crash leaves either the old name or the
    new one, never both (which the next round would see as two files).
    """
    if _rename_noreplace(src, dst):
        return
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            raise FileExistsError(errno.EEXIST, "exists", str(dst)) from exc
        # No hard links here (some network or FAT disks): check, then rename.
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "exists", str(dst)) from exc
        os.rename(src, dst)
        return
    os.unlink(src)


def _rename_folder_noreplace(src: str, dst: str) -> None:
    if _rename_noreplace(src, dst):
        return
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, "exists", str(dst))
    os.rename(src, dst)
