"""A storage node's own disk going bad: read-only, or returning I/O errors.

An ``OSError`` with ``EROFS`` or ``EIO`` from any chunk write, delete or read marks the disk
faulty. From then on the node refuses writes at once with 503 (``DiskReadOnly`` /
``DiskIOError``) instead of failing each one halfway, and reports the fault in ``/healthz``;
the API stops placing chunks there and repair copies the node's replicas elsewhere (a faulty
node is drained like one an operator drains). Reads still work where the disk allows.

``/healthz`` also notices a file system mounted read-only before any write fails. The
fault clears by itself once a test write succeeds again (checked at most every ``RECHECK``
seconds, when ``/healthz`` is asked): a disk remounted read-write, or a transient
error, puts the node back in service without a restart. A full disk is not a fault: it is
``StoreFull`` (507) per write, and the API skips a node without room.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from minidropbox.storage.base import DiskFault, DiskIOError, DiskReadOnly

log = logging.getLogger("minidropbox.node")

RECHECK = 10.0
FAULTS: dict[int, type[DiskFault]] = {errno.EROFS: DiskReadOnly, errno.EIO: DiskIOError}
PROBE = ".write-check"


class DiskCondition:
    """Whether this node's disk takes writes (see the module docstring). Thread-safe enough:
    every change is one attribute assignment."""

    def __init__(self, root: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.root = root
        self.clock = clock
        self.fault: type[DiskFault] | None = None
        self._checked = 0.0

    @property
    def name(self) -> str | None:
        return self.fault.fault if self.fault else None

    def error(self) -> DiskFault:
        assert self.fault is not None
        what = "read-only" if self.fault is DiskReadOnly else "returning I/O errors"
        return self.fault(f"This storage node's disk is {what}; it takes no writes until "
                          "that is fixed.")

    def note(self, exc: OSError) -> DiskFault | None:
        """Record ``exc`` if it is a disk fault; returns the error to answer with, else None."""
        fault = FAULTS.get(exc.errno or 0)
        if fault is None:
            return None
        if self.fault is not fault:
            log.error("disk of %s is faulty (%s): refusing writes", self.root, exc)
        self.fault, self._checked = fault, self.clock()
        return self.error()

    def refuse_writes(self) -> None:
        if self.fault is not None:
            raise self.error()

    def recheck(self) -> None:
        """Notice a file system mounted read-only before a write fails on it, and clear a
        fault once a small durable write works again (blocking: run in a thread)."""
        try:
            read_only = bool(os.statvfs(self.root).f_flag & os.ST_RDONLY)
        except OSError:
            read_only = False
        if read_only:
            if self.fault is not DiskReadOnly:
                log.error("disk of %s is mounted read-only: refusing writes", self.root)
            self.fault, self._checked = DiskReadOnly, self.clock()
            return
        if self.fault is None or self.clock() - self._checked < RECHECK:
            return
        self._checked = self.clock()
        probe = self.root / PROBE
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, b"ok")
                os.fsync(fd)
            finally:
                os.close(fd)
            probe.unlink()
        except OSError:
            return
        log.warning("disk of %s takes writes again", self.root)
        self.fault = None
