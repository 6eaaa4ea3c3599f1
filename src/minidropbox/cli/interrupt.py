"""Ctrl-C in the CLI: the first one stops the command cleanly; later ones are ignored while
it does, so a second press cannot cut the clean-up short and print a traceback.

Transfers stop within one block of the first Ctrl-C (``client.batch.stoppable``) and remove
their temp files; the command then ends with "Interrupted." and exit code 130.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import NoReturn

import click

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


def _first_interrupt(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def install() -> None:
    """Take over SIGINT for a client command (server commands install their own)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _first_interrupt)


def exit_interrupted() -> NoReturn:
    click.echo("Interrupted.", err=True)
    leave_abandoned_workers(EXIT_INTERRUPTED)
    sys.exit(EXIT_INTERRUPTED)


def leave_abandoned_workers(code: int) -> None:
    """End the process now, with ``code``, if worker threads are still alive; return if none.

    By the time a command ends it has waited for every worker whose work it needs, so one
    still alive was given up on: a node request a hedge made redundant, stuck on a hung node
    until its timeout (10 s), or a worker Ctrl-C stopped waiting for. Python would wait for
    each before exiting, so a `get` whose file was complete in 1.4 s ended at 10.4 s."""
    if any(t.is_alive() and not t.daemon for t in threading.enumerate()
           if t is not threading.main_thread()):
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
