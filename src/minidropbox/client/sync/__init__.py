"""The sync client: keep a local folder and a server folder the same, never losing a byte.

The decisions are made by the pure planner in ``minidropbox.core.reconcile``; this package
gathers its inputs and carries out its plans.

    client.py    SyncClient: builds the remote, folder, state DB, engine and watchers once
    state.py     what both sides last agreed on (SQLite under LOCAL_DIR/.minidropbox/)
    ignore.py    .minidropboxignore and built-in ignores
    scanner.py   the local tree (hashing only files whose stat moved)
    remote.py    the server tree, cursor and generation
    journal.py   the server tree kept up to date from the change journal
    executor.py  carries out a plan, re-checking each precondition first
    localfs.py   checked local names, folders that stay inside the root, temp-file cleanup
                 (the disk itself is behind ``client/localfolder.py``)
    engine.py    reconcile rounds and the safety rails
    daemon.py    --once, and the run loop with backoff
    watcher.py   local (watchdog) and server (notifications) events
    status.py    the one-line status and the action log
    errors.py    why a sync stops
"""
