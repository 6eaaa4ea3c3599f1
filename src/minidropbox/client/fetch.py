"""Direct download: a file's chunks fetched from the storage nodes, several at once, hedged.

The API answers a read plan (``Remote.read_plan``): the chunks in order, each with its
holders and a read grant. ``fetch_planned`` fetches ``FETCHES`` chunks at once from the nodes;
a holder that has not answered within ``NodeLink.hedge_delay`` (a few times the usual GET) gets
company from the next one, and the first intact answer wins, so a hung node costs a fraction of
a second, never its timeout. A copy that comes corrupt is reported to the API, which checks
it and has it repaired. Every chunk is checked against its hash as it arrives; one no
node serves comes through the API's proxy route (a ``Range`` of ``/files/content``). Chunks
are written in file order, at most ``AHEAD`` of them held in memory, so memory stays flat
whatever the file size.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from minidropbox.client.batch import Progress, TransferStats
from minidropbox.client.interruptible import result_of
from minidropbox.client.localfolder import Writer
from minidropbox.client.nodes import CorruptCopy, NodeFault, PlannedChunk
from minidropbox.client.remote import Remote
from minidropbox.client.values import Entry
from minidropbox.core import errors

FETCHES = 6  # chunks fetched at once
AHEAD = 8  # chunks fetched ahead of the one being written (at most 4 MiB each)
ATTEMPT_THREADS = 24  # node requests at once, hedges included


class NoDirectPath(Exception):
    """The plan gives no chunk a grant: the whole file goes through the API instead."""


class ChunkFetcher:
    """Fetches one file's planned chunks; one instance per download."""

    def __init__(self, remote: Remote, path: str, version: int,
                 stats: TransferStats) -> None:
        self.remote = remote
        self.path = path
        self.version = version
        self.stats = stats
        self.fetches = ThreadPoolExecutor(FETCHES, thread_name_prefix="minidropbox-fetch")
        # Attempts run apart from the fetches that wait on them: a fetch waiting for its
        # hedge never takes the thread the hedge needs.
        self.attempts = ThreadPoolExecutor(ATTEMPT_THREADS,
                                           thread_name_prefix="minidropbox-node-get")

    def close(self, interrupted: bool = False) -> None:
        """``interrupted`` (Ctrl-C): the fetches under way are not waited for, and the
        ``--bwlimit`` limiter ends their waits, as ``plans`` does for a folder; nothing they
        fetch is written (only this thread writes), and the caller drops the temp file.
        Waiting for them let a paced download run on for most of its length."""
        if interrupted and self.remote.bandwidth is not None:
            self.remote.bandwidth.stop()
        self.fetches.shutdown(wait=not interrupted, cancel_futures=True)
        # Attempts a hedge made redundant may still wait on a hung node: never wait for them.
        self.attempts.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> ChunkFetcher:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self.close(interrupted=kind is not None and issubclass(kind, KeyboardInterrupt))

    def fetch(self, chunk: PlannedChunk) -> bytes:
        """The chunk's verified bytes: from its holders, else through the API; paced to
        ``--bwlimit`` once they are here (the next fetch waits its turn).

        Pacing inside a hedged attempt would count its wait as the node's slowness: every
        chunk got a hedge, so twice the bytes, and the losers' turns kept the command
        alive seconds after it was done."""
        data = self._from_nodes(chunk, chunk.grant) if chunk.grant is not None else None
        if data is None:
            data = self.remote.read_range(self.path, self.version, chunk.offset, chunk.size)
            self.stats.add(requests=1)
            if hashlib.sha256(data).hexdigest() != chunk.hash:
                raise errors.StorageUnavailable(f"{self.path}: the server sent bytes that do "
                                                f"not match chunk {chunk.hash[:12]}.")
        if self.remote.bandwidth is not None:
            self.remote.bandwidth.take(len(data))
        return data

    def _from_nodes(self, chunk: PlannedChunk, grant: str) -> bytes | None:
        nodes = self.remote.nodes
        order = deque(nodes.read_order(chunk.nodes))
        running: dict[Future[bytes], tuple[str, float]] = {}

        def start() -> None:
            url = order.popleft()
            running[self.attempts.submit(nodes.get, url, chunk.hash, grant)] = (
                url, time.monotonic())
            self.stats.add(node_requests=1)

        if order:
            start()
        while running:
            timeout = nodes.hedge_delay() if order else None
            done, _ = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
            if not done:
                # The oldest attempt is slow: read it last for a while, ask the next holder.
                slow = min(running.values(), key=lambda v: v[1])[0]
                nodes.note_slow(slow)
                start()
                continue
            for future in done:
                url, started = running.pop(future)
                try:
                    data = future.result()
                except CorruptCopy:
                    self._report(chunk.hash, url)
                    if order:
                        start()
                    continue
                except NodeFault:
                    if order:
                        start()
                    continue
                except errors.InvalidGrant:
                    return None  # expired while queued, or the node restarted: the API serves
                nodes.note_latency(time.monotonic() - started)
                for other in running:
                    if not other.cancel():  # under way: its bytes count against --bwlimit
                        other.add_done_callback(self._book_lost_hedge)
                return data
        return None

    def _book_lost_hedge(self, attempt: Future[bytes]) -> None:
        if (self.remote.bandwidth is not None and not attempt.cancelled()
                and attempt.exception() is None):
            self.remote.bandwidth.book(len(attempt.result()))

    def _report(self, chunk_hash: str, url: str) -> None:
        """Have the API check (and repair) a copy that came corrupt; a report that does not
        get through changes nothing for this download (the scrubber finds it later)."""
        self.stats.add(requests=1)
        with contextlib.suppress(errors.MiniDropboxError):
            self.remote.report_corrupt_copy(chunk_hash, url)


def fetch_planned(remote: Remote, path: str, version: int | None, out: Writer, *,
                  progress: Progress | None, stats: TransferStats,
                  ) -> tuple[Entry, int, list[str]]:
    """Write a version of ``path`` (the current one when ``version`` is None) into ``out``
    from the storage nodes: the entry it is, the bytes written, and the chunk hashes in file
    order (each verified). ``NoDirectPath`` before anything is written when no chunk of the
    first page has a grant."""
    entry, first, following = remote.read_plan(path, version)
    stats.add(requests=1)
    if first and all(c.grant is None for c in first):
        raise NoDirectPath(path)
    assert entry.version is not None

    def chunks() -> Iterator[PlannedChunk]:
        page, offset = first, following
        while True:
            yield from page
            if offset is None:
                return
            _, page, offset = remote.read_plan(path, entry.version, offset)
            stats.add(requests=1)

    hashes: list[str] = []
    written = 0
    with ChunkFetcher(remote, path, entry.version, stats) as fetcher:
        for data, chunk in _in_order(fetcher.fetches, fetcher.fetch, chunks()):
            out.write(data)
            written += len(data)
            hashes.append(chunk.hash)
            stats.add(bytes_received=len(data))
            if progress:
                progress(len(data))
    return entry, written, hashes


def fetch_range(remote: Remote, path: str, version: int | None, start: int, end: int | None,
                out: Writer, *, stats: TransferStats) -> int:
    """Write bytes ``start``..``end`` (inclusive; None: to the end) of a version of ``path``
    (the current one when ``version`` is None) into ``out`` the way a whole file comes: the
    read plan from the chunk holding ``start``, only the chunks the range needs, fetched from
    the nodes (hedged, each verified whole against its hash), a chunk no node serves through
    the API. Returns the bytes written; ``InvalidInput`` for a ``start`` past the end."""
    entry, first, following = remote.read_plan(path, version, start)
    stats.add(requests=1)
    assert entry.version is not None and entry.size is not None
    last = entry.size - 1 if end is None else min(end, entry.size - 1)

    def chunks() -> Iterator[PlannedChunk]:
        page, offset = first, following
        while True:
            for chunk in page:
                if chunk.offset > last:
                    return
                yield chunk
            if offset is None or offset > last:
                return
            _, page, offset = remote.read_plan(path, entry.version, offset)
            stats.add(requests=1)

    written = 0
    with ChunkFetcher(remote, path, entry.version, stats) as fetcher:
        for data, chunk in _in_order(fetcher.fetches, fetcher.fetch, chunks()):
            lo, hi = max(start - chunk.offset, 0), min(last - chunk.offset + 1, chunk.size)
            out.write(data[lo:hi])
            written += hi - lo
            stats.add(bytes_received=hi - lo)
    return written


def _in_order(pool: ThreadPoolExecutor, fetch: Callable[[PlannedChunk], bytes],
              chunks: Iterator[PlannedChunk]) -> Iterator[tuple[bytes, PlannedChunk]]:
    """``fetch`` of each chunk, run ``AHEAD`` at a time, yielded in the chunks' order."""
    pending: deque[tuple[Future[bytes], PlannedChunk]] = deque()
    try:
        for chunk in chunks:
            pending.append((pool.submit(fetch, chunk), chunk))
            if len(pending) >= AHEAD:
                future, done = pending.popleft()
                yield result_of(future), done
        while pending:
            future, done = pending.popleft()
            yield result_of(future), done
    finally:
        for future, _ in pending:
            future.cancel()
