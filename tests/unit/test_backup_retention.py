"""The backup retention rule and interval parsing (pure, clock passed in)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from minidropbox.core.retention import SnapshotStamp, parse_interval, snapshots_to_keep


def at(day: int, hour: int) -> float:
    return datetime(2024, 5, day, hour, tzinfo=UTC).timestamp()


NOW = at(10, 12)
# Two snapshots a day for days 1..10 (06:00 and 18:00; day 10 only has 06:00 so far).
SNAPS = [SnapshotStamp(f"d{d:02}h{h:02}", at(d, h)) for d in range(1, 11) for h in (6, 18)
         if at(d, h) <= NOW]


def test_keep_last_only() -> None:
    assert snapshots_to_keep(SNAPS, keep_last=3, keep_daily=0, now=NOW) == {
        "d10h06", "d09h18", "d09h06"}


def test_one_per_day_keeps_that_days_newest() -> None:
    assert snapshots_to_keep(SNAPS, keep_last=0, keep_daily=3, now=NOW) == {
        "d10h06", "d09h18", "d08h18"}


def test_policies_combine() -> None:
    kept = snapshots_to_keep(SNAPS, keep_last=2, keep_daily=2, now=NOW)
    assert kept == {"d10h06", "d09h18"}
    kept = snapshots_to_keep(SNAPS, keep_last=3, keep_daily=4, now=NOW)
    assert kept == {"d10h06", "d09h18", "d09h06", "d08h18", "d07h18"}


def test_newest_always_kept_and_empty_is_empty() -> None:
    assert snapshots_to_keep(SNAPS, keep_last=0, keep_daily=0, now=NOW) == {"d10h06"}
    assert snapshots_to_keep([], keep_last=5, keep_daily=5, now=NOW) == set()


def test_future_snapshot_counts_as_today() -> None:
    future = [*SNAPS, SnapshotStamp("future", at(20, 1))]
    kept = snapshots_to_keep(future, keep_last=0, keep_daily=1, now=NOW)
    assert kept == {"future"}  # newest, and today's newest; nothing else is "today"


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), ("90s", 90), ("30m", 1800), ("1h", 3600), ("2d", 172800), ("1h30m", 5400),
    ("0.5s", 0.5)])
def test_parse_interval(text: str, seconds: float) -> None:
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1x", "0", "-5m", "1h30"])
def test_parse_interval_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_interval(text)
