"""Waiting on the deletion fence (``metadata/fence.py``) from async code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from minidropbox.metadata import fence
from minidropbox.metadata.db import Database

POLL = 0.05


async def wait_closed(db: Database, clock: Callable[[], float] = time.time,
                      timeout: float = 60.0) -> bool:
    """Until no deletion holds the fence (closing one whose deleter died); False on timeout."""
    waited = 0.0
    while waited < timeout:
        if await asyncio.to_thread(_closed, db, clock()):
            return True
        await asyncio.sleep(POLL)
        waited += POLL
    return False


def _closed(db: Database, now: float) -> bool:
    with db.read() as conn:
        if fence.writer_token(conn) is not None:
            return True
        if fence.deadline(conn) >= now:
            return False
    with db.write() as conn:
        fence.expire(conn, now)
        return fence.writer_token(conn) is not None
