"""Backups: snapshots of the metadata and the chunks it references, verify, restore, prune.

Repository layout (``--repo DIR``)::

    DIR/config.json                 format version and repository id (written once)
    DIR/lock                        flock'd by ``backup now`` and ``prune``; holds pid, host, time
    DIR/lock.readers                shared by ``verify``/``restore``, exclusive for ``prune``
    DIR/chunks/ab/cd/abcd…          content-addressed chunk store (``storage.disk.DiskChunkStore``)
    DIR/snapshots/<id>/metadata.db  online copy of the SQLite metadata (or ``metadata.pgdump``)
    DIR/snapshots/<id>/chunks.txt   every chunk the copy references: ``<sha256> <size>`` per line
    DIR/snapshots/<id>/manifest.json  written last: the snapshot exists once this file does

Invariants (the write ordering that keeps them is in ``snapshot.py``):

1. A snapshot with a manifest only references chunks the repository holds, unless the manifest
   names them as missing (they were on no storage node at backup time; ``verify`` flags them).
2. The manifest is written last and atomically (temp file, fsync, rename, fsync the folder),
   so a backup killed at any point leaves a folder without a manifest: ``list`` ignores it,
   the next ``backup now`` or ``prune`` removes it, and no complete snapshot is touched.
3. A chunk file is only ever created complete and verified (``DiskChunkStore``), and only
   ``prune`` deletes chunks: after removing snapshots' manifests, the chunks no remaining
   snapshot references.
"""
