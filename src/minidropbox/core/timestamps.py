"""The range of client-supplied timestamps (file modification times).

Finite, and between years 1 and 9999: what dates, HTTP ``Last-Modified`` headers and the
database can show. A NaN, an infinity or 1e20 stored once would make every later listing or
download of that version fail.
"""

from __future__ import annotations

import math

from minidropbox.core.errors import InvalidInput

MIN_TIMESTAMP = -62_135_596_800.0  # 0001-01-01T00:00:00Z
MAX_TIMESTAMP = 253_402_300_799.0  # 9999-12-31T23:59:59Z


def check_timestamp(value: float) -> float:
    """``value`` if it is a finite time within years 1-9999, else ``InvalidInput``."""
    if not (math.isfinite(value) and MIN_TIMESTAMP <= value <= MAX_TIMESTAMP):
        raise InvalidInput("A modification time must be a finite time within years 1-9999.")
    return value
