"""Open the chunk store a node URL names: a storage node (``http://``) or a bucket (``s3://``).

The API's cluster, the backup service and restore all address storage by the URLs in
``MINIDROPBOX_NODES``; this is the one place that turns such a URL into a store.
"""

from __future__ import annotations

import os
from typing import Protocol

from minidropbox.storage.base import ChunkStore
from minidropbox.storage.node_client import NodeClient
from minidropbox.storage.s3 import S3ChunkStore, is_object_store, location_from


class RemoteChunkStore(ChunkStore, Protocol):
    """A ``ChunkStore`` over the network, holding connections until ``close``."""

    def close(self) -> None: ...


def open_store(url: str, cluster_secret: str, timeout: float,
               s3_credentials_file: str | os.PathLike[str] | None = None) -> RemoteChunkStore:
    """A blocking store for ``url``: a storage node's client, or a bucket."""
    if is_object_store(url):
        return S3ChunkStore(location_from(url, s3_credentials_file), timeout)
    return NodeClient(url, cluster_secret, timeout)
