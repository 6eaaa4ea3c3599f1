"""Ctrl-C in the CLI: the first one stops the command cleanly; later ones are ignored while
it does, so a second press cannot cut the clean-up short and print a traceback.

Transfers stop within one block of the first Ctrl-C (``client.batch.stoppable``) and remove
their temp files; the command then ends with "Interrupted." and exit code 130.
"""

from __future__ import annotations

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
    sys.stdout.flush()
    sys.stderr.flush()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate()
           if t is not threading.main_thread()):
        # A worker still stuck in a network read would hold the interpreter's exit open;
        # everything it owned was given its chance to clean up already.
        os._exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_INTERRUPTED)
