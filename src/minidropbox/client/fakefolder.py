"""``LocalFolder``s for tests, after syncthing's ``lib/fs/fakefs.go``.

``FakeFolder`` keeps a tree in memory: generated from a seed (``FakeFolder(files=100,
seed=7)``), optionally case-insensitive as on macOS and Windows (names keep their case, but
``A.txt`` and ``a.txt`` are one file). Inodes are stable across renames, a rename moves the
ctime, and time comes from an injectable clock, so scans and plans are reproducible.

``FaultyFolder`` wraps any folder and makes chosen operations misbehave once:
``fail_next("rename", errno.ENOSPC)`` raises before doing anything, ``crash_after("rename")``
does the operation and then raises ``SimulatedCrash`` (a ``BaseException``, like a kill:
nothing in the sync client catches it), ``before_next("info", action, name="a.txt")`` runs
``action`` first (a user saving a file between scan and act). ``name`` limits each to calls
whose first argument is that name.

Both are safe to use from the executor's download threads (one lock per folder).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from minidropbox.client.localfolder import (
    FileInfo,
    FileKind,
    Kinds,
    LocalFolder,
    Reader,
    Writer,
    Written,
    join,
    write_temps_one_by_one,
)
from minidropbox.client.localpaths import TMP_PREFIX


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    def call(self: FakeFolder, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)
    call.__name__, call.__doc__ = method.__name__, method.__doc__
    return call


@dataclass
class _Node:
    name: str
    kind: FileKind
    ino: int
    mtime_ns: int
    ctime_ns: int
    data: bytearray = field(default_factory=bytearray)
    children: dict[str, _Node] = field(default_factory=dict)  # by key (folders only)

    def info(self) -> FileInfo:
        size = len(self.data) if self.kind == "file" else 0
        return FileInfo(self.kind, size, self.mtime_ns, self.ctime_ns, self.ino)


class _NodeReader:
    def __init__(self, node: _Node) -> None:
        self.node = node
        self.data = bytes(node.data)  # what a reader of a replaced file keeps seeing
        self.pos = 0

    def readinto(self, buffer: memoryview, /) -> int:
        n = min(len(buffer), len(self.data) - self.pos)
        buffer[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n

    def read(self) -> bytes:
        rest = self.data[self.pos :]
        self.pos = len(self.data)
        return rest

    def info(self) -> FileInfo:
        return self.node.info()


class _NodeWriter:
    def __init__(self, folder: FakeFolder, node: _Node) -> None:
        self.folder, self.node = folder, node

    def write(self, data: bytes | memoryview, /) -> int:
        self.node.data.extend(data)
        self.node.mtime_ns = self.node.ctime_ns = self.folder.clock()
        return len(data)


class FakeFolder:
    """An in-memory ``LocalFolder``; see the module docstring."""

    def __init__(self, files: int = 0, seed: int = 0, *, case_insensitive: bool = False,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.case_insensitive = case_insensitive
        self.clock = clock
        self.lock = threading.RLock()
        self._inodes = itertools.count(2)
        self._temps = itertools.count(1)  # temp names from a counter: a seed replays exactly
        self.root = self._new("", "folder")
        if files:
            self.populate(files, random.Random(seed))

    # -- building and inspecting (tests) -------------------------------------------------------
    def populate(self, files: int, rng: random.Random) -> None:
        """Add ``files`` random files (0-64 KiB) in a few levels of folders."""
        folders = [""]
        for i in range(files):
            if rng.random() < 0.2:
                folder = join(rng.choice(folders), f"d{len(folders)}")
                self.makedirs(folder)
                folders.append(folder)
            size = rng.choice([0, 1, 100, 4096, rng.randrange(65536)])
            self.write(join(rng.choice(folders), f"f{i}.bin"), rng.randbytes(size))

    def makedirs(self, name: str) -> None:
        current = ""
        for part in name.split("/") if name else []:
            current = join(current, part)
            with contextlib.suppress(FileExistsError):
                self.mkdir(current)

    @_locked
    def write(self, name: str, data: bytes, mtime_ns: int | None = None) -> None:
        """Create or overwrite a file (as a user's editor would), creating its folders."""
        folder, _, leaf = name.rpartition("/")
        self.makedirs(folder)
        parent = self._folder(folder)
        node = parent.children.get(self._key(leaf))
        if node is None:
            node = self._new(leaf, "file")
            parent.children[self._key(leaf)] = node
            self._touch(parent)
        elif node.kind != "file":
            raise IsADirectoryError(errno.EISDIR, "is a folder", name)
        node.data = bytearray(data)
        node.mtime_ns = node.ctime_ns = self.clock() if mtime_ns is None else mtime_ns

    def read(self, name: str) -> bytes:
        node = self._node(name)
        if node.kind != "file":
            raise IsADirectoryError(errno.EISDIR, "is a folder", name)
        return bytes(node.data)

    def tree(self) -> dict[str, bytes | None]:
        """Every name (as stored) -> its bytes, or None for a folder."""
        out: dict[str, bytes | None] = {}

        def walk(node: _Node, prefix: str) -> None:
            for child in node.children.values():
                name = join(prefix, child.name)
                out[name] = bytes(child.data) if child.kind == "file" else None
                if child.kind == "folder":
                    walk(child, name)
        walk(self.root, "")
        return out

    # -- LocalFolder -------------------------------------------------------------------------
    @_locked
    def info(self, name: str) -> FileInfo:
        return self._node(name).info()

    @_locked
    def list(self, name: str) -> list[tuple[str, FileInfo]]:
        node = self._node(name)
        if node.kind != "folder":
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", name)
        return sorted(((c.name, c.info()) for c in node.children.values()),
                      key=lambda pair: pair[0])

    @_locked
    def kinds(self, name: str) -> Kinds:
        node = self._node(name)
        if node.kind != "folder":
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", name)
        return sorted((c.name, c.kind) for c in node.children.values())

    @contextlib.contextmanager
    def open_read(self, name: str) -> Iterator[Reader]:
        node = self._node(name)
        if node.kind != "file":
            raise IsADirectoryError(errno.EISDIR, "is a folder", name)
        yield _NodeReader(node)

    @_locked
    def create_temp(self, folder: str) -> str:
        name = join(folder, f"{TMP_PREFIX}{next(self._temps):016x}")
        parent = self._folder(folder)
        parent.children[self._key(name.rsplit("/", 1)[-1])] = self._new(
            name.rsplit("/", 1)[-1], "file")
        self._touch(parent)
        return name

    @contextlib.contextmanager
    def open_write(self, name: str) -> Iterator[Writer]:
        node = self._node(name)
        if node.kind != "file":
            raise IsADirectoryError(errno.EISDIR, "is a folder", name)
        node.data = bytearray()
        node.mtime_ns = node.ctime_ns = self.clock()
        yield _NodeWriter(self, node)

    @_locked
    def set_mtime(self, name: str, mtime_ns: int) -> None:
        node = self._node(name)
        node.mtime_ns = mtime_ns
        node.ctime_ns = self.clock()

    def write_temps(self, folder: str, contents: Sequence[tuple[bytes, int]],
                    ) -> Written:
        return write_temps_one_by_one(self, folder, contents)

    @_locked
    def mkdir(self, name: str) -> None:
        folder, _, leaf = name.rpartition("/")
        parent = self._folder(folder)
        if self._key(leaf) in parent.children:
            raise FileExistsError(errno.EEXIST, "exists", name)
        parent.children[self._key(leaf)] = self._new(leaf, "folder")
        self._touch(parent)

    @_locked
    def rename(self, src: str, dst: str, *, replace: bool) -> None:
        sfolder, _, sleaf = src.rpartition("/")
        dfolder, _, dleaf = dst.rpartition("/")
        sparent, dparent = self._folder(sfolder), self._folder(dfolder)
        node = sparent.children.get(self._key(sleaf))
        if node is None:
            raise FileNotFoundError(errno.ENOENT, "not found", src)
        existing = dparent.children.get(self._key(dleaf))
        if existing is not None and existing is not node:
            if not replace:
                raise FileExistsError(errno.EEXIST, "exists", dst)
            if existing.kind == "folder" or node.kind == "folder":
                raise IsADirectoryError(errno.EISDIR, "is a folder", dst)
        if node.kind == "folder" and self._within(node, dparent):
            raise OSError(errno.EINVAL, "a folder cannot move into itself", dst)
        del sparent.children[self._key(sleaf)]
        node.name = dleaf
        node.ctime_ns = self.clock()
        dparent.children[self._key(dleaf)] = node
        self._touch(sparent)
        self._touch(dparent)

    @_locked
    def unlink(self, name: str) -> None:
        folder, _, leaf = name.rpartition("/")
        parent = self._folder(folder)
        node = parent.children.get(self._key(leaf))
        if node is None:
            raise FileNotFoundError(errno.ENOENT, "not found", name)
        if node.kind == "folder":
            raise IsADirectoryError(errno.EISDIR, "is a folder", name)
        del parent.children[self._key(leaf)]
        self._touch(parent)

    @_locked
    def rmdir(self, name: str) -> None:
        folder, _, leaf = name.rpartition("/")
        parent = self._folder(folder)
        node = parent.children.get(self._key(leaf))
        if node is None:
            raise FileNotFoundError(errno.ENOENT, "not found", name)
        if node.kind != "folder":
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", name)
        if node.children:
            raise OSError(errno.ENOTEMPTY, "not empty", name)
        del parent.children[self._key(leaf)]
        self._touch(parent)

    def fsync_dir(self, name: str) -> None:
        self._folder(name)

    def is_inside(self, name: str) -> bool:
        return True  # no symlinks in here

    # -- internals ---------------------------------------------------------------------------
    def _new(self, name: str, kind: FileKind) -> _Node:
        now = self.clock()
        return _Node(name, kind, next(self._inodes), now, now)

    def _touch(self, folder: _Node) -> None:
        """A name added to or removed from ``folder`` changes its mtime, as on a disk."""
        folder.mtime_ns = folder.ctime_ns = self.clock()

    def _key(self, name: str) -> str:
        return name.casefold() if self.case_insensitive else name

    def _node(self, name: str) -> _Node:
        node = self.root
        for part in name.split("/") if name else []:
            child = node.children.get(self._key(part)) if node.kind == "folder" else None
            if child is None:
                raise FileNotFoundError(errno.ENOENT, "not found", name)
            node = child
        return node

    def _folder(self, name: str) -> _Node:
        node = self._node(name)
        if node.kind != "folder":
            raise FileNotFoundError(errno.ENOENT, "not a folder", name)
        return node

    def _within(self, node: _Node, folder: _Node) -> bool:
        if node is folder:
            return True
        return any(self._within(child, folder) for child in node.children.values()
                   if child.kind == "folder")


class SimulatedCrash(BaseException):
    """The process died here (``FaultyFolder.crash_after``): nothing may catch this."""


class FaultyFolder:
    """A ``LocalFolder`` that misbehaves once, on request; see the module docstring."""

    def __init__(self, inner: LocalFolder) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.failures: dict[tuple[str, str | None], int] = {}
        self.crashes: set[tuple[str, str | None]] = set()
        self.before: dict[tuple[str, str | None], Callable[[], None]] = {}
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def fail_next(self, op: str, error: int, name: str | None = None) -> None:
        """The next call of ``op`` (on ``name``) raises ``OSError(error)``, doing nothing."""
        self.failures[op, name] = error

    def crash_after(self, op: str, name: str | None = None) -> None:
        """The next call of ``op`` (on ``name``) happens, then ``SimulatedCrash`` is raised."""
        self.crashes.add((op, name))

    def before_next(self, op: str, action: Callable[[], None], name: str | None = None) -> None:
        """Run ``action`` just before the next call of ``op`` (on ``name``)."""
        self.before[op, name] = action

    def _take(self, table: Any, op: str, first: str | None) -> Any:
        with self.lock:
            for key in ((op, first), (op, None)):
                if key in table:
                    if isinstance(table, set):
                        table.discard(key)
                        return True
                    return table.pop(key)
        return None

    def _call(self, op: str, *args: Any, **kwargs: Any) -> Any:
        first = args[0] if args and isinstance(args[0], str) else None
        with self.lock:
            self.calls.append((op, args))
        action = self._take(self.before, op, first)
        if action is not None:
            action()
        code = self._take(self.failures, op, first)
        if code is not None:
            raise OSError(code, os.strerror(code), first or op)
        result = getattr(self.inner, op)(*args, **kwargs)
        if self._take(self.crashes, op, first) is not None:
            raise SimulatedCrash(f"crashed after {op}{args}")
        return result

    def info(self, name: str) -> FileInfo:
        result: FileInfo = self._call("info", name)
        return result

    def list(self, name: str) -> list[tuple[str, FileInfo]]:
        result: list[tuple[str, FileInfo]] = self._call("list", name)
        return result

    def kinds(self, name: str) -> Kinds:
        result: Kinds = self._call("kinds", name)
        return result

    def open_read(self, name: str) -> AbstractContextManager[Reader]:
        result: AbstractContextManager[Reader] = self._call("open_read", name)
        return result

    def create_temp(self, folder: str) -> str:
        return str(self._call("create_temp", folder))

    def open_write(self, name: str) -> AbstractContextManager[Writer]:
        result: AbstractContextManager[Writer] = self._call("open_write", name)
        return result

    def set_mtime(self, name: str, mtime_ns: int) -> None:
        self._call("set_mtime", name, mtime_ns)

    def write_temps(self, folder: str, contents: Sequence[tuple[bytes, int]],
                    ) -> Written:
        return write_temps_one_by_one(self, folder, contents)

    def mkdir(self, name: str) -> None:
        self._call("mkdir", name)

    def rename(self, src: str, dst: str, *, replace: bool) -> None:
        self._call("rename", src, dst, replace=replace)

    def unlink(self, name: str) -> None:
        self._call("unlink", name)

    def rmdir(self, name: str) -> None:
        self._call("rmdir", name)

    def fsync_dir(self, name: str) -> None:
        self._call("fsync_dir", name)

    def is_inside(self, name: str) -> bool:
        return bool(self._call("is_inside", name))
