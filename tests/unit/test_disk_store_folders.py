"""The disk store makes each fan-out folder once and remembers it; a folder removed behind its
back (by hand, by a restore) is made again on the next write."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from minidropbox.storage.disk import DiskChunkStore


def test_a_folder_removed_behind_the_store_is_made_again(tmp_path: Path) -> None:
    store = DiskChunkStore(tmp_path / "chunks")
    data = b"remembered folder"
    name = hashlib.sha256(data).hexdigest()
    store.put(name, data)
    shutil.rmtree(store.path_for(name).parent.parent)
    store.put(name, data)
    assert store.get(name) == data
    other = b"another chunk"
    store.put(hashlib.sha256(other).hexdigest(), other)
    assert store.get(hashlib.sha256(other).hexdigest()) == other
