"""``--bwlimit``: the rate parser and the shared pacer, with an injected clock."""

from __future__ import annotations

import threading
import time

import pytest

from minidropbox.client.bandwidth import Bandwidth, parse_rate
from minidropbox.client.batch import TransferStopped
from minidropbox.core.errors import InvalidInput


@pytest.mark.parametrize(("text", "rate"), [
    ("500K", 500 * 1024), ("2M", 2 * 1024**2), ("1.5MiB/s", int(1.5 * 1024**2)),
    ("1048576", 1024**2), ("1g", 1024**3), ("64kb", 64 * 1024)])
def test_rates(text: str, rate: int) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["fast", "", "-1M", "2X", "100"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_rate(text)


class FakeTime:
    """The clock and the sleep a ``Bandwidth`` is given: sleeping moves the clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def limit(self, rate: int) -> Bandwidth:
        return Bandwidth(rate, clock=lambda: self.now, sleep=self.sleep)


def test_bytes_are_paced_across_callers() -> None:
    time_ = FakeTime()
    limit = time_.limit(1024 * 1024)
    for _ in range(5):  # 5 MiB at 1 MiB/s: the last MiB may start after 4 s
        limit.take(1024 * 1024)
    assert time_.now == pytest.approx(4.0)
    blocks = list(limit.paced(iter([b"x" * 512 * 1024] * 2)))
    assert len(blocks) == 2 and time_.now == pytest.approx(5.5)


def test_booked_bytes_do_not_wait_but_the_next_take_waits_for_them() -> None:
    """A hedged fetch that lost still moved its bytes: they count, without a wait of theirs."""
    time_ = FakeTime()
    limit = time_.limit(1024 * 1024)
    limit.take(1024 * 1024)
    limit.book(2 * 1024 * 1024)
    assert time_.slept == []
    limit.take(1024 * 1024)  # after the first MiB and the two booked
    assert time_.slept == [pytest.approx(3.0)]


def test_stop_ends_every_wait_at_once() -> None:
    """Ctrl-C under --bwlimit: workers whose turn is far ahead must not outlive the command."""
    limit = Bandwidth(1024)  # 1 KiB/s: the second take below waits 100 s
    limit.take(100 * 1024)
    outcome: list[BaseException] = []

    def worker() -> None:
        try:
            limit.take(1024)
        except TransferStopped as exc:
            outcome.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    time.sleep(0.05)
    limit.stop()
    thread.join(timeout=30)  # far below the 100 s it would wait
    assert not thread.is_alive() and len(outcome) == 1
    with pytest.raises(TransferStopped):
        limit.take(1)
