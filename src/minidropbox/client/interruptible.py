"""Waits on other threads that Ctrl-C can end.

Python runs signal handlers in the main thread only, but the kernel hands a process's SIGINT
to any of its threads that will take it, and a thread that is starting another thread takes
it. The handler then waits for the main thread's next Python instruction, and nothing wakes
a main thread blocked in one long wait (``future.result()``, ``Condition.wait()``): it saw
the Ctrl-C only when that wait ended, which for a paced download was the end of the file
(27 to 47 s after the press, in CI and under load here). A stand-alone repro: main in
``future.result()`` while other threads start pools, SIGINT at a random moment: 5 late of
30; waking every ``WAKE_EVERY``: 0 of 40. So every wait the main thread can spend a whole
transfer in goes through ``result_of`` or a ``Condition.wait(WAKE_EVERY)`` loop.
"""

from __future__ import annotations

from concurrent.futures import Future, wait
from typing import TypeVar

T = TypeVar("T")

WAKE_EVERY = 0.2  # seconds: the longest a waiting thread goes without noticing Ctrl-C


def result_of(future: Future[T]) -> T:
    """``future.result()``, waking every ``WAKE_EVERY`` seconds while the future runs."""
    while not future.done():
        wait((future,), timeout=WAKE_EVERY)
    return future.result()
