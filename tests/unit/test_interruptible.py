"""Ctrl-C reaches a main thread that waits on a worker, whichever thread the kernel gives the
signal to (``client/interruptible.py``).

The process here blocks SIGINT in its main thread after starting the worker, so the kernel
must hand the signal to the worker: what a thread starting threads did at random in CI. The
main thread must still stop within a moment, where a plain ``future.result()`` sat until the
worker's 20 s were up and then exited 0."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

RESULT_OF = "result_of(pool.submit(time.sleep, 20))"
CONDITION_IN_SLICES = textwrap.dedent("""\
    cond = threading.Condition()
    pool.submit(time.sleep, 20)
    with cond:
        while True:
            cond.wait(WAKE_EVERY)""")

SCRIPT = """\
import os, signal, threading, time
from concurrent.futures import ThreadPoolExecutor
from minidropbox.client.interruptible import WAKE_EVERY, result_of

signal.signal(signal.SIGINT, signal.default_int_handler)  # as the CLI: even if inherited ignored
pool = ThreadPoolExecutor(1)
pool.submit(time.sleep, 0)  # the worker thread exists, with SIGINT not blocked
signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGINT}})
print("waiting", flush=True)
try:
{wait}
except KeyboardInterrupt:
    os._exit(130)
os._exit(0)
"""


def _press_ctrl_c_while(wait: str) -> tuple[int, float]:
    script = SCRIPT.format(wait=textwrap.indent(wait, "    "))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "waiting\n"
    time.sleep(0.3)  # well inside the wait
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=60)
    return code, time.monotonic() - start


def test_result_of_sees_ctrl_c_taken_by_another_thread() -> None:
    code, seconds = _press_ctrl_c_while(RESULT_OF)
    assert code == 130, "the wait ran to its end: the Ctrl-C was never seen"
    assert seconds < 10, seconds  # one wake-up (0.2 s) on an idle machine; the wait was 20 s


def test_condition_wait_in_slices_sees_ctrl_c_taken_by_another_thread() -> None:
    code, seconds = _press_ctrl_c_while(CONDITION_IN_SLICES)
    assert code == 130
    assert seconds < 10, seconds
