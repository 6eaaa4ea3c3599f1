"""Scrub: the node re-reads every chunk it holds, at a limited rate, and quarantines bad ones.

Bit rot, a truncated write that slipped past the disk, a file edited by hand: the node finds
each of them on its own within one full pass, instead of waiting for a reader to trip over it.
A chunk whose bytes no longer hash to its name is moved to ``DIR/quarantine/`` (never deleted,
never served again) and listed by ``GET /quarantine``; the API polls that list, marks the
replica bad and re-replicates from a healthy copy, then acknowledges with
``DELETE /quarantine/{file}``.

The pace is ``scrub_rate`` bytes per second (reads are paced, not the pass), so scrubbing
never starves the requests the node is there to serve; a full pass starts every
``scrub_interval`` seconds (or right after the previous one, if that took longer).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

from minidropbox.core.pacing import Pacer
from minidropbox.storage.base import ChunkNotFound
from minidropbox.storage.disk import BLOCK, QUARANTINE, DiskChunkStore

log = logging.getLogger("minidropbox.node.scrub")

QUARANTINE_FILE_RE = re.compile(r"([0-9a-f]{64})-[0-9a-f]{8}")  # fullmatch
PAGE = 1000


@dataclass
class ScrubStats:
    passes: int = 0
    checked: int = 0
    quarantined: int = 0
    last_pass_started: float = 0.0
    last_pass_seconds: float = 0.0


class Scrubber:
    """Re-hashes a ``DiskChunkStore`` forever; see the module docstring."""

    def __init__(self, store: DiskChunkStore, rate: float, interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.interval = interval
        self.clock = clock
        self.pacer = Pacer(rate)
        self.stats = ScrubStats()

    async def run_forever(self) -> None:
        while True:
            started = self.clock()
            await self.scrub_pass()
            await asyncio.sleep(max(0.0, started + self.interval - self.clock()))

    async def scrub_pass(self) -> int:
        """One full pass over the store; returns how many chunks were quarantined."""
        started, found, after = self.clock(), 0, ""
        self.stats.last_pass_started = time.time()
        while True:
            names = await anyio.to_thread.run_sync(self.store.list, after, PAGE)
            for name in names:
                if not await self.check(name):
                    found += 1
            if len(names) < PAGE:
                break
            after = names[-1]
        self.stats.passes += 1
        self.stats.last_pass_seconds = self.clock() - started
        return found

    async def check(self, name: str) -> bool:
        """Hash one chunk (paced); quarantine it if it is bad. False when it was bad."""
        try:
            size = await anyio.to_thread.run_sync(self.store.size, name)
        except ChunkNotFound:
            return True  # deleted meanwhile: nothing to check
        await asyncio.sleep(self.pacer.delay(self.clock(), max(size, 1)))
        intact = await anyio.to_thread.run_sync(_intact, self.store.path_for(name), name)
        self.stats.checked += 1
        if intact is not False:
            return True
        try:
            target = await anyio.to_thread.run_sync(self.store.quarantine, name)
        except ChunkNotFound:
            return True  # deleted meanwhile
        self.stats.quarantined += 1
        log.error("chunk %s is corrupt; moved to %s", name, target)
        return False


def _intact(path: Path, name: str) -> bool | None:
    """Whether the file hashes to its name (None if it vanished while being read)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(BLOCK):
                digest.update(block)
    except FileNotFoundError:
        return None
    return digest.hexdigest() == name


def quarantined(root: Path) -> list[dict[str, str]]:
    """The quarantined files not yet acknowledged: ``[{file, chunk}]``, oldest name first."""
    folder = root / QUARANTINE
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    out = []
    for file in names:
        match = QUARANTINE_FILE_RE.fullmatch(file)
        if match:
            out.append({"file": file, "chunk": match.group(1)})
    return out


def release(root: Path, file: str) -> bool:
    """Forget a quarantined file once the cluster has recorded it; False if it is not there."""
    if not QUARANTINE_FILE_RE.fullmatch(file):
        return False
    try:
        (root / QUARANTINE / file).unlink()
    except FileNotFoundError:
        return False
    return True
