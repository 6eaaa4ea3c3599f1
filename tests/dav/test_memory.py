"""Flat memory: a PUT or GET through /dav/ costs the API the same memory whatever the file's
size (the body streams to a spool, then chunk by chunk; downloads go block by block). A 16 MiB
and a 128 MiB file are compared; ``make bench`` (rss5g) measures a 5 GiB PUT."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator

from tests.dav.conftest import DavUser
from tests.harness import TestCluster

MiB = 1024 * 1024


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _peak_during(pid: int, action: Callable[[], None]) -> float:
    peak, done = [_rss_mib(pid)], threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak.append(_rss_mib(pid))
            time.sleep(0.05)
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        action()
    finally:
        done.set()
        watcher.join()
    return max(peak)


def _body(size: int, seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)  # fresh random bytes: nothing dedups
    for _ in range(size // (4 * MiB)):
        yield rng.randbytes(4 * MiB)


def test_put_and_get_memory_does_not_grow_with_the_file(dav_cluster: TestCluster,
                                                        dav_user: DavUser) -> None:
    pid = dav_cluster.api.proc.pid  # type: ignore[union-attr]
    peaks = {}
    with dav_user.client() as dav:
        for name, size in (("small", 16 * MiB), ("big", 128 * MiB)):
            def put(name: str = name, size: int = size) -> None:
                r = dav.put(f"/dav/{name}.bin", content=_body(size, len(name)))
                assert r.status_code == 201, r.text
            peaks[name] = _peak_during(pid, put)

        def get() -> None:
            total = 0
            with dav.stream("GET", "/dav/big.bin") as r:
                for block in r.iter_bytes():
                    total += len(block)
            assert total == 128 * MiB
        peaks["get"] = _peak_during(pid, get)
    # The big file is 8x the small one; a buffered body would add ~112 MiB.
    assert peaks["big"] - peaks["small"] < 40, peaks
    assert peaks["get"] - peaks["small"] < 40, peaks
