"""The sync client: keep a local folder and a server folder the same, never losing a byte.

    state.py     what both sides last agreed on (SQLite under LOCAL_DIR/.minidropbox/)
    ignore.py    .minidropboxignore and built-in ignores
    scanner.py   the local tree (hashing only files whose stat moved)
    remote.py    the server tree, cursor and generation
    executor.py  carries out a plan from ``minidropbox.core.reconcile``, re-checking first
    engine.py    reconcile rounds, safety rails, the run loop
    watcher.py   local (watchdog) and server (notifications) events
    status.py    the one-line status and the action log
"""
