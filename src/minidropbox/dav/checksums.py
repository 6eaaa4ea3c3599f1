"""SHA-1 and MD5 of file contents for WebDAV clients that compare checksums (rclone's
``vendor=owncloud`` mode, ownCloud and Nextcloud clients).

Our content hash is a hash of the chunk list, which no client can compute without our
chunker. rclone sends ``OC-Checksum: SHA1:<hex>`` with each PUT (others send MD5, or both)
and asks for ``oc:checksums`` (SHA-1 and MD5) in PROPFIND. Both digests are taken while a
PUT's body arrives and kept (in the commit's own transaction) by content hash, so they never
go stale: any later file with the same content has them too.
Files that never came through WebDAV have none (the property is then absent, and clients fall
back to size and modification time).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any, NamedTuple

from sqlalchemy import Connection
from wsgidav.xml_tools import etree

from minidropbox.metadata import dav as repo
from minidropbox.metadata.db import Database

OWNCLOUD_NS = "http://owncloud.org/ns"
OC_CHECKSUMS = f"{{{OWNCLOUD_NS}}}checksums"


class Digests(NamedTuple):
    sha1: str
    md5: str


def checksums_element(digests: Digests) -> Any:
    element = etree.Element(OC_CHECKSUMS)
    etree.SubElement(element, f"{{{OWNCLOUD_NS}}}checksum").text = \
        f"SHA1:{digests.sha1} MD5:{digests.md5}"
    return element


def parse_oc_checksum(header: str | None) -> dict[str, str]:
    """The digests in an ``OC-Checksum`` header (``SHA1:<hex> MD5:<hex> ...``) by kind."""
    found = {}
    for item in (header or "").split():
        kind, _, value = item.partition(":")
        if kind.upper() in ("SHA1", "MD5") and value:
            found[kind.lower()] = value.lower()
    return found


# Below this, a block is hashed on the event loop: a thread hop would cost more.
INLINE_BYTES = 64 * 1024


class BodyDigests:
    """SHA-1 and MD5 of a body handed over in batches of blocks, taken in a worker thread
    while the next batch is cut and hashed in another (hashlib lets go of the GIL on large
    buffers, so the two run on two cores). One batch at a time is in flight, so the digests
    see the blocks in order."""

    def __init__(self) -> None:
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._pending: asyncio.Future[None] | None = None

    def _update(self, blocks: list[bytes]) -> None:
        for block in blocks:
            self._sha1.update(block)
            self._md5.update(block)

    async def add(self, blocks: list[bytes]) -> None:
        """Start hashing ``blocks`` (after the previous batch); returns at once, or once the
        previous batch is done."""
        await self.wait()
        if sum(len(b) for b in blocks) < INLINE_BYTES:
            self._update(blocks)
        else:
            self._pending = asyncio.ensure_future(asyncio.to_thread(self._update, blocks))

    async def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            await pending

    async def result(self) -> Digests:
        await self.wait()
        return Digests(self._sha1.hexdigest(), self._md5.hexdigest())


class Checksums:
    def __init__(self, db: Database) -> None:
        self.db = db

    def of(self, content_hash: str, conn: Connection | None = None) -> Digests | None:
        return self.of_many([content_hash], conn).get(content_hash)

    def of_many(self, content_hashes: list[str],
                conn: Connection | None = None) -> dict[str, Digests]:
        """The digests known for these contents, read in ``conn`` if given."""
        if not content_hashes:
            return {}
        if conn is None:
            with self.db.read() as own:
                return self.of_many(content_hashes, own)
        return {k: Digests(*v)
                for k, v in repo.checksums_of_many(conn, content_hashes).items()}

    @staticmethod
    def recorder(digests: Digests) -> Callable[[Connection, dict[str, Any]], None]:
        """Records the digests of a commit's content inside the commit's transaction."""
        def record(conn: Connection, entry: dict[str, Any]) -> None:
            repo.record_checksums(conn, entry["content_hash"], digests.sha1, digests.md5)
        return record
