"""Wake parked long-polls and notification sockets as soon as the server is told to stop.

uvicorn lets in-flight requests finish before it stops. A long-poll parked for up to two
minutes would hold the shutdown that long (and then be cancelled into a 500), so on SIGTERM or
SIGINT the hub is closed first: every waiter answers at once and the client reconnects to
whichever server comes up next. The server's own handler then runs as before.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def wake_on_stop_signal(wake: Callable[[], None]) -> None:
    """Background job: chain ``wake`` (run on the event loop) in front of the server's own
    SIGTERM/SIGINT handlers, until the app stops.

    Only where a Python-level handler is already installed in the main thread (uvicorn's);
    anything else is left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    previous: dict[int, object] = {int(sig): signal.getsignal(sig) for sig in SIGNALS}

    def handler(sig: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(wake)
        chained = previous.get(sig)
        if callable(chained):
            chained(sig, frame)

    chained_to = [sig for sig, old in previous.items() if callable(old)]
    for sig in chained_to:
        signal.signal(sig, handler)
    try:
        await asyncio.Event().wait()  # until the app stops and cancels this job
    finally:
        for sig in chained_to:
            old = previous[sig]
            if signal.getsignal(sig) is handler and callable(old):
                signal.signal(sig, old)
