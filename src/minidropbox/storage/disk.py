"""The disk chunk store: one directory of content-addressed chunk files.

Layout: ``root/ab/cd/abcd…`` (two levels of fan-out keep directories small). Write ordering,
the invariant being "never a partial or wrong chunk under its final name":

1. stream the bytes into ``root/ab/cd/.tmp-abcd…-<random>`` while hashing them;
2. compare the hash with the name; on a mismatch delete the temp file (``HashMismatch``);
3. fsync the temp file, rename it to its final name, fsync the directory.

A crash at any point leaves at most a ``.tmp-`` file, which ``cleanup()`` removes at start.
``ENOSPC`` (or a quota) becomes ``StoreFull`` and removes the temp file too.

``put_many`` (the node's batch write) keeps the same order for a group of chunks with one flush
per step instead of two fsyncs per chunk: every temp file written → one ``syncfs`` of the
store's file system (all their bytes durable) → every rename → one more ``syncfs`` (all the
directory entries durable) → answer. Where ``syncfs`` is missing, each temp file is fsynced
and each directory touched is fsynced, in the same order.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
import threading
from collections.abc import AsyncIterable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NoReturn

import anyio.to_thread

from minidropbox.core.chunking import HASH_RE
from minidropbox.core.errors import (
    HashMismatch,
    InvalidInput,
    PayloadTooLarge,
    RangeNotSatisfiable,
)
from minidropbox.durable import fsync_dir, sync_filesystem, syncfs_available
from minidropbox.storage.base import ChunkNotFound, CorruptChunk, StoreFull, StoreStats

BLOCK = 1 << 20
TEMP_PREFIX = ".tmp-"
QUARANTINE = "quarantine"
_HEX2 = frozenset(f"{i:02x}" for i in range(256))
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


def check_name(name: str) -> str:
    """``name`` if it is a chunk name (64 lowercase hex digits), else ``InvalidInput``."""
    if not HASH_RE.fullmatch(name):
        raise InvalidInput("A chunk name is the lowercase hex SHA-256 of its bytes.")
    return name


def check_range(size: int, start: int, end: int | None) -> int:
    """The end of ``[start, end)`` within a chunk of ``size`` bytes (``None`` means the end).

    Shared by every store so they agree: an empty range is fine, one outside the chunk is not.
    """
    stop = size if end is None else end
    if start < 0 or stop < start or stop > size:
        raise RangeNotSatisfiable(f"Range {start}-{stop} is outside a chunk of {size} bytes.")
    return stop


def _full_or_raise(exc: OSError) -> NoReturn:
    if exc.errno in _FULL_ERRNOS:
        raise StoreFull("The storage node's disk is full.") from exc
    raise exc


class ChunkWriter:
    """One chunk being written: ``write`` blocks, then ``commit`` or ``abort``.

    When the chunk is already present nothing is written, but the bytes are still hashed so a
    mismatch is reported the same way whatever the store holds.
    """

    def __init__(self, store: DiskChunkStore, name: str) -> None:
        self.store = store
        self.name = check_name(name)
        self.final = store.path_for(name)
        self.size = 0
        self._hash = hashlib.sha256()
        self._file: BinaryIO | None = None
        self._temp: Path | None = None
        # Written and fsynced even when the chunk is already here (dropped at publish): a
        # store of a chunk that someone else has must take as long as a new one, or its time
        # would tell that the content exists.
        temp = self.final.with_name(f"{TEMP_PREFIX}{name}-{secrets.token_hex(4)}")
        try:
            self._file = store.open_temp(temp)
        except OSError as exc:
            _full_or_raise(exc)
        self._temp = temp

    def write(self, data: bytes | memoryview) -> None:
        self._hash.update(data)
        self.size += len(data)
        if self._file is not None:
            try:
                self._file.write(data)
            except OSError as exc:
                self.abort()
                _full_or_raise(exc)

    def commit(self) -> bool:
        """Make the chunk visible; True if this call created it, False if it was present."""
        if self._hash.hexdigest() != self.name:
            self.abort()
            raise HashMismatch(f"The bytes received do not hash to {self.name}.")
        if self._file is None or self._temp is None:
            return False
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        except OSError as exc:
            self.abort()
            _full_or_raise(exc)
        created = self.store._publish(self._temp, self.final, self.size)
        self._file = None
        self._temp = None
        return created

    def abort(self) -> None:
        """Drop the temp file; safe to call more than once."""
        if self._file is not None:
            with contextlib.suppress(OSError):  # a file we are throwing away: nothing to save
                self._file.close()
            self._file = None
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)
            self._temp = None


class DiskChunkStore:
    """Chunks as files under ``root`` (see the module docstring). Thread-safe."""

    def __init__(self, root: Path, *, block: int = BLOCK) -> None:
        self.root = Path(root)
        self.block = block
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # Kept up to date by put/delete so stat() never walks the tree; seeded by cleanup().
        self._count = 0
        self._used = 0
        # Fan-out folders known to exist: made once, not tried again for every chunk (a
        # mkdir that fails with EEXIST, then a stat, was a tenth of a node's time on writes).
        self._folders: set[Path] = set()
        self.cleanup()

    # -- layout -----------------------------------------------------------------------------

    def open_temp(self, temp: Path) -> BinaryIO:
        """A new temp file, its fan-out folder made first if need be."""
        folder = temp.parent
        if folder in self._folders:
            try:
                return open(temp, "xb")
            except FileNotFoundError:
                self._folders.discard(folder)  # removed behind our back: make it again
        folder.mkdir(parents=True, exist_ok=True)
        self._folders.add(folder)
        return open(temp, "xb")

    def path_for(self, name: str) -> Path:
        check_name(name)
        return self.root / name[:2] / name[2:4] / name

    def _fanout_dirs(self, after: str = "") -> Iterator[Path]:
        """The ``root/ab/cd`` directories in ascending order, from the one ``after`` is in.

        Skipping whole directories before listing them keeps a page of a big store cheap.
        """
        for top in sorted(_hex_children(self.root)):
            if top < after[:2]:
                continue
            for sub in sorted(_hex_children(self.root / top)):
                if top + sub >= after[:4]:
                    yield self.root / top / sub

    def cleanup(self) -> int:
        """Remove temp files left by a crash and recount the chunks; returns temp files removed.

        Run at start, before any writer exists: a temp file found then can only be a leftover.
        """
        removed = count = used = 0
        for folder in self._fanout_dirs():
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.startswith(TEMP_PREFIX):
                        os.unlink(entry.path)
                        removed += 1
                    elif HASH_RE.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                        count += 1
                        used += entry.stat(follow_symlinks=False).st_size
        with self._lock:
            self._count, self._used = count, used
        return removed

    # -- writing ----------------------------------------------------------------------------

    def open_writer(self, name: str) -> ChunkWriter:
        return ChunkWriter(self, name)

    def put(self, name: str, data: bytes) -> None:
        self.put_stream(name, [data])

    def put_stream(self, name: str, blocks: Iterable[bytes | memoryview]) -> bool:
        """Store a chunk given as blocks; True if it was new. Errors keep nothing."""
        writer = self.open_writer(name)
        try:
            for block in blocks:
                writer.write(block)
        except BaseException:
            writer.abort()
            raise
        return writer.commit()

    async def put_stream_async(self, name: str, blocks: AsyncIterable[bytes],
                               buffer: int = BLOCK) -> bool:
        """``put_stream`` for an async body (the node's PUT); blocking I/O runs in threads.

        Small network reads are gathered into ``buffer``-sized writes so each thread hop moves
        a useful amount; memory stays at about ``buffer`` whatever the chunk size.
        """
        writer = await anyio.to_thread.run_sync(self.open_writer, name)
        pending = bytearray()
        try:
            async for piece in blocks:
                pending += piece
                if len(pending) >= buffer:
                    await anyio.to_thread.run_sync(writer.write, bytes(pending))
                    pending.clear()
            if pending:
                await anyio.to_thread.run_sync(writer.write, bytes(pending))
            return await anyio.to_thread.run_sync(writer.commit)
        except BaseException:
            # Client gone, cancelled, or failed: the temp file must not outlive the request.
            writer.abort()
            raise

    def put_many(self, items: Sequence[tuple[str, bytes | memoryview]],
                 ) -> list[bool | HashMismatch]:
        """Store several chunks with one flush per step for all of them (module docstring);
        per chunk, in order: True if this call created it, False if it was already here, or
        the ``HashMismatch`` of one whose bytes do not hash to its name (the others are
        stored all the same). Nothing is visible under a final name before every temp file's
        bytes are durable, and this returns only once the renames are durable too. A fault
        (``StoreFull``, an ``OSError``) fails the whole call and removes the temp files left;
        a chunk renamed before it had its bytes durable already, and is simply not reported.

        A chunk already here is written and flushed all the same, then dropped (as
        ``ChunkWriter`` does): the call takes as long whether or not the content exists.
        """
        results: list[bool | HashMismatch] = [False] * len(items)
        staged: list[_Staged] = []
        # Opened before the writes: syncfs reports the write-back errors seen since.
        root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for index, (name, data) in enumerate(items):
                final = self.path_for(name)
                if hashlib.sha256(data).hexdigest() != name:
                    results[index] = HashMismatch(f"The bytes received do not hash to {name}.")
                    continue
                temp = final.with_name(f"{TEMP_PREFIX}{name}-{secrets.token_hex(4)}")
                fh = self.open_temp(temp)
                staged.append(_Staged(index, temp, final, len(data)))
                with fh:
                    fh.write(data)
                    if not self.group_flush:
                        fh.flush()
                        os.fsync(fh.fileno())
            folders = {item.final.parent for item in staged}
            self._flush_data(root_fd)
            while staged:
                item = staged[0]
                results[item.index] = self._publish(item.temp, item.final, item.size,
                                                    sync_dir=False)
                staged.pop(0)
            self._flush_entries(root_fd, folders)
        except OSError as exc:
            _full_or_raise(exc)
        finally:
            for item in staged:
                item.temp.unlink(missing_ok=True)
            os.close(root_fd)
        return results

    @property
    def group_flush(self) -> bool:
        """Whether ``put_many`` flushes with ``syncfs`` (else file by file)."""
        return syncfs_available()

    def _flush_data(self, root_fd: int) -> None:
        """``put_many``'s first flush: the temp files' bytes (fsynced one by one already
        without ``syncfs``)."""
        if self.group_flush:
            sync_filesystem(root_fd)

    def _flush_entries(self, root_fd: int, folders: set[Path]) -> None:
        """``put_many``'s second flush: the renames into ``folders``."""
        if self.group_flush:
            sync_filesystem(root_fd)
            return
        for folder in sorted(folders):
            fsync_dir(folder)

    def _publish(self, temp: Path, final: Path, size: int, sync_dir: bool = True) -> bool:
        """Rename ``temp`` to ``final`` (already fsynced); True if ``final`` is new.
        ``sync_dir=False``: the caller makes the directory entry durable itself."""
        with self._lock:
            if final.exists():
                # A concurrent (or earlier) writer of the same bytes won; ours is redundant.
                temp.unlink(missing_ok=True)
                exists = True
            else:
                exists = False
                os.replace(temp, final)
                self._count += 1
                self._used += size
        if sync_dir:
            fsync_dir(final.parent)  # also when it was there: the same time either way
        return not exists

    # -- reading ----------------------------------------------------------------------------

    def has(self, name: str) -> bool:
        return self.path_for(name).is_file()

    def size(self, name: str) -> int:
        try:
            return self.path_for(name).stat().st_size
        except FileNotFoundError:
            raise ChunkNotFound(f"Chunk {name} is not on this node.") from None

    def open(self, name: str) -> BinaryIO:
        """The chunk's file, opened for reading (unverified); the caller closes it."""
        try:
            return open(self.path_for(name), "rb")
        except FileNotFoundError:
            raise ChunkNotFound(f"Chunk {name} is not on this node.") from None

    def get(self, name: str) -> bytes:
        with self.open(name) as fh:
            data = fh.read()
        if hashlib.sha256(data).hexdigest() != name:
            raise CorruptChunk(f"Chunk {name} is corrupt on disk.")
        return data

    def read_many(self, names: Sequence[str], max_bytes: int) -> list[tuple[str, bytes]]:
        """The chunks of ``names`` this store has, whole and unverified (the reader checks
        each), in order; ``PayloadTooLarge`` before reading if they hold more than
        ``max_bytes`` (the node's batch read)."""
        opened: list[tuple[str, BinaryIO]] = []
        try:
            total = 0
            for name in names:
                try:
                    fh = self.open(name)
                except ChunkNotFound:
                    continue
                opened.append((name, fh))
                total += os.fstat(fh.fileno()).st_size
                if total > max_bytes:
                    raise PayloadTooLarge(f"These chunks hold more than {max_bytes} bytes.")
            return [(name, fh.read()) for name, fh in opened]
        finally:
            for _, fh in opened:
                fh.close()

    def iter_range(self, name: str, start: int = 0, end: int | None = None,
                   block: int = BLOCK) -> Iterator[bytes]:
        """Bytes ``[start, end)`` in blocks, unverified (a slice has no hash to check)."""
        fh = self.open(name)
        try:
            stop = check_range(os.fstat(fh.fileno()).st_size, start, end)
        except BaseException:
            fh.close()
            raise
        return _read_blocks(fh, start, stop, block)

    # -- removing ---------------------------------------------------------------------------

    def delete(self, name: str) -> None:
        path = self.path_for(name)
        with self._lock:
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                return
            self._count -= 1
            self._used -= size

    def quarantine(self, name: str) -> Path:
        """Move a (corrupt) chunk out of the way into ``root/quarantine/``; returns where."""
        path = self.path_for(name)
        folder = self.root / QUARANTINE
        folder.mkdir(exist_ok=True)
        target = folder / f"{name}-{secrets.token_hex(4)}"
        with self._lock:
            try:
                size = path.stat().st_size
                os.replace(path, target)
            except FileNotFoundError:
                raise ChunkNotFound(f"Chunk {name} is not on this node.") from None
            self._count -= 1
            self._used -= size
        fsync_dir(path.parent)
        return target

    # -- listing ----------------------------------------------------------------------------

    def list_aged(self, after: str, limit: int, min_age: float,
                  now: float) -> tuple[list[str], str | None]:
        """One page of ``list`` keeping only chunks last written ``min_age`` seconds before
        ``now`` or earlier, and where the next page starts (None: this was the last).

        The age filter is applied after paging so a page of young chunks still moves the
        cursor on; the orphan sweep uses it to leave copies of writes in flight alone.
        """
        names = self.list(after, limit)
        following = names[-1] if len(names) == limit else None
        old = []
        for name in names:
            try:
                written = self.path_for(name).stat().st_mtime
            except FileNotFoundError:
                continue  # deleted since it was listed
            if written <= now - min_age:
                old.append(name)
        return old, following

    def list(self, after: str = "", limit: int = 1000) -> list[str]:
        names: list[str] = []
        if limit <= 0:
            return names
        for folder in self._fanout_dirs(after):
            found = sorted(n for n in os.listdir(folder) if HASH_RE.fullmatch(n) and n > after)
            names.extend(found[: limit - len(names)])
            if len(names) >= limit:
                break
        return names

    def stat(self) -> StoreStats:
        free = shutil.disk_usage(self.root).free
        with self._lock:
            return StoreStats(used_bytes=self._used, free_bytes=free, chunk_count=self._count)


@dataclass
class _Staged:
    """A chunk of ``put_many`` written to its temp file, not yet renamed."""

    index: int
    temp: Path
    final: Path
    size: int


def _hex_children(folder: Path) -> list[str]:
    """Fan-out subdirectories (``00``…``ff``); others, like ``quarantine``, are not chunks."""
    try:
        with os.scandir(folder) as entries:
            return [e.name for e in entries
                    if e.name in _HEX2 and e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []


def _read_blocks(fh: BinaryIO, start: int, stop: int, block: int) -> Iterator[bytes]:
    with fh:
        fh.seek(start)
        left = stop - start
        while left > 0:
            data = fh.read(min(block, left))
            if not data:
                break  # the file shrank under us (deleted and rewritten): stop short
            left -= len(data)
            yield data
