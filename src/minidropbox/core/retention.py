"""Which backup snapshots to keep: a pure rule with the clock passed in.

Two policies are combined (a snapshot kept by either is kept):

- ``keep_last``: the ``keep_last`` newest snapshots;
- ``keep_daily``: for each of the ``keep_daily`` most recent UTC calendar days counting back
  from ``now`` (today included), the newest snapshot taken that day.

The newest snapshot is always kept, whatever the settings: a prune must never leave the
repository without a restorable state. Snapshots dated in the future (a clock that jumped)
count as today, so a wrong clock can only make retention keep more, never less.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

DAY = 86_400


@dataclass(frozen=True)
class SnapshotStamp:
    """What retention needs to know of a snapshot: its id and when it was taken (epoch s)."""

    id: str
    time: float


def utc_day(epoch: float) -> int:
    """Days since 1970-01-01 in UTC for ``epoch`` seconds."""
    return datetime.fromtimestamp(epoch, UTC).date().toordinal()


def snapshots_to_keep(snapshots: Iterable[SnapshotStamp], keep_last: int, keep_daily: int,
                      now: float) -> set[str]:
    """The ids of the snapshots retention keeps (see the module docstring)."""
    ordered = sorted(snapshots, key=lambda s: (s.time, s.id), reverse=True)
    if not ordered:
        return set()
    keep = {ordered[0].id}
    keep.update(s.id for s in ordered[: max(keep_last, 0)])
    today = utc_day(now)
    seen_days: set[int] = set()
    for snap in ordered:  # newest first, so the first one seen per day is that day's newest
        age = max(today - utc_day(snap.time), 0)
        if age < keep_daily and age not in seen_days:
            seen_days.add(age)
            keep.add(snap.id)
    return keep


def parse_interval(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``1h``, ``2d`` (or combinations like ``1h30m``) → seconds.

    Raises ``ValueError`` with a message naming the accepted forms.
    """
    units = {"s": 1, "m": 60, "h": 3600, "d": DAY}
    value = text.strip().lower()
    if not value:
        raise ValueError("an interval is a number with a unit, like 30m or 1h")
    if value.replace(".", "", 1).isdigit():
        seconds = float(value)
    else:
        seconds, number = 0.0, ""
        for char in value:
            if char.isdigit() or char == ".":
                number += char
            elif char in units and number:
                seconds += float(number) * units[char]
                number = ""
            else:
                raise ValueError(f"{text!r} is not an interval; use forms like 90s, 30m, 1h, 2d")
        if number:
            raise ValueError(f"{text!r} is not an interval; use forms like 90s, 30m, 1h, 2d")
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a positive interval")
    return seconds
