"""SHA-1 and MD5 of file contents for WebDAV clients that compare checksums (rclone's
``vendor=owncloud`` mode, ownCloud and Nextcloud clients).

Our content hash is a hash of the chunk list, which no client can compute without our
chunker. rclone sends ``OC-Checksum: SHA1:<hex> MD5:<hex>`` with each PUT and asks for
``oc:checksums`` in PROPFIND. Both digests are taken while a PUT's body is spooled and kept by
content hash, so they never go stale: any later file with the same content has them too.
Files that never came through WebDAV have none (the property is then absent, and clients fall
back to size and modification time).
"""

from __future__ import annotations

from typing import Any, NamedTuple

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


class Checksums:
    def __init__(self, db: Database) -> None:
        self.db = db

    def of(self, content_hash: str) -> Digests | None:
        return self.of_many([content_hash]).get(content_hash)

    def of_many(self, content_hashes: list[str]) -> dict[str, Digests]:
        if not content_hashes:
            return {}
        with self.db.read() as conn:
            return {k: Digests(*v)
                    for k, v in repo.checksums_of_many(conn, content_hashes).items()}

    def record(self, content_hash: str, digests: Digests) -> None:
        """Keep the digests of new content (content already known keeps its row)."""
        with self.db.write() as conn:
            repo.record_checksums(conn, content_hash, digests.sha1, digests.md5)
