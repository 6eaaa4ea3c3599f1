"""``--bwlimit``: at most so many bytes a second through one ``Remote``, uploads and downloads
together, whatever the number of threads sending (as rclone's ``--bwlimit``)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator

from minidropbox.client.batch import TransferStopped
from minidropbox.core.errors import InvalidInput
from minidropbox.core.pacing import Pacer

UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
SIZE_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?(?:/s)?\s*", re.IGNORECASE)
MIN_RATE = 1024  # bytes/s: below this a 4 MiB chunk takes over an hour


def parse_rate(text: str) -> int:
    """``"500K"``, ``"2M"``, ``"1.5MiB/s"``, ``"1048576"`` → bytes per second."""
    match = SIZE_RE.fullmatch(text)
    if match is None:
        raise InvalidInput(f"{text!r} is not a rate: use e.g. 500K, 2M or 1.5MiB (per second).")
    rate = int(float(match.group(1)) * UNITS[match.group(2).lower()])
    if rate < MIN_RATE:
        raise InvalidInput(f"--bwlimit {text} is under 1 KiB/s.")
    return rate


class Bandwidth:
    """A shared pacer: ``take(n)`` returns once ``n`` more bytes may go.

    Several threads booking whole chunks can be given turns seconds ahead; ``stop`` (Ctrl-C)
    ends every wait at once with ``TransferStopped``, so none of them outlives the command
    (and each removes its temp file on the way out)."""

    def __init__(self, rate: int, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.rate = rate
        self.pacer = Pacer(float(rate))
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.clock = clock
        self.sleep = sleep or self._sleep_unless_stopped

    def _sleep_unless_stopped(self, seconds: float) -> None:
        if self.stopped.wait(seconds):
            raise TransferStopped

    def stop(self) -> None:
        """Every ``take`` waiting now, or called later, raises ``TransferStopped``."""
        self.stopped.set()

    def book(self, nbytes: int) -> None:
        """Count bytes that came without waiting for their turn (a hedged fetch that lost):
        later ``take`` calls wait for them."""
        with self.lock:
            self.pacer.delay(self.clock(), float(nbytes))

    def take(self, nbytes: int) -> None:
        if self.stopped.is_set():
            raise TransferStopped
        with self.lock:
            wait = self.pacer.delay(self.clock(), float(nbytes))
        if wait > 0:
            self.sleep(wait)

    def paced(self, blocks: Iterator[bytes]) -> Iterator[bytes]:
        for block in blocks:
            self.take(len(block))
            yield block
