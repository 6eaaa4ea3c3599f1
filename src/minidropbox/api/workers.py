"""Several API processes on one port: ``minidropbox server api --workers N``.

The parent binds the listening socket once and forks N workers; each builds its own app (its
own database pool, event loop, change hub and node clients) and accepts from the shared socket,
so the kernel spreads connections over them. With PostgreSQL that is exactly the setup of
several API replicas (docs/DESIGN.md, "Several API replicas"): every worker hears the others'
commits through ``LISTEN``/``NOTIFY``, so a client's long-poll or WebSocket wakes once whichever
worker committed; repair, audit and GC run only in the worker that holds the leader lock.
SQLite has one writer and an in-process change hub, so it is refused there.

The parent only supervises: SIGTERM or SIGINT is passed on to every worker, and when a worker
dies on its own the others are stopped too and the parent exits non-zero, so whoever runs it
(the launcher, systemd, a container runtime) restarts the whole API, not a part of it.
Workers get SIGTERM if the parent dies, even by ``kill -9`` (Linux).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
from collections.abc import Callable

log = logging.getLogger("minidropbox.api")
MAX_WORKERS = 64


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048)
    sock.set_inheritable(True)
    return sock


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def run_workers(count: int, sock: socket.socket,
                serve: Callable[[socket.socket], None]) -> int:
    """Fork ``count`` workers that each run ``serve(sock)``; wait for them. Returns the exit
    code: 0 after a requested stop, 1 when a worker died on its own."""
    if not 1 <= count <= MAX_WORKERS:
        raise ValueError(f"between 1 and {MAX_WORKERS} workers")
    children: set[int] = set()
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            _signal(pid, signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for _ in range(count):
            pid = os.fork()
            if pid == 0:  # the worker
                for s, handler in previous.items():
                    signal.signal(s, handler)
                _die_with_parent()
                code = 0
                try:
                    serve(sock)
                except BaseException:
                    log.exception("API worker %d failed", os.getpid())
                    code = 1
                os._exit(code)
            children.add(pid)
        log.info("API running as %d workers: %s", count, sorted(children))
        failed = False
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            children.discard(pid)
            if not stopping:
                log.error("API worker %d exited (status %d): stopping the others", pid, status)
                failed = True
                stop(signal.SIGTERM, None)
        return 1 if failed else 0
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.kill(pid, signum)
