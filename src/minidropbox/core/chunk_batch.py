"""The bodies of a storage node's batch write and batch read (``POST /chunks/batch``,
``POST /chunks/read``, docs/PROTOCOL.md).

Many small chunks in one request, so a node makes them all durable with one flush and the
API spends one request per node on a batch instead of one per chunk and copy. A batch write's
body, and a batch read's answer:

    {"chunks": [["<sha256>", <size>], ...]}\\n<bytes of the first chunk><bytes of the next>...

The first line (the manifest) names each chunk and its size, in order; the bytes follow, back
to back, nothing after them. A batch read asks with ``{"chunks": ["<sha256>", ...]}`` and is
answered with the chunks the node has (one it lacks is left out). Bounded
(``MAX_BATCH_CHUNKS``, ``MAX_BATCH_BYTES``) so a request never costs a node more than its
sender: a node refuses a larger one with 413 before reading it. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from minidropbox.core.chunking import HASH_RE
from minidropbox.core.errors import InvalidInput, PayloadTooLarge

MAX_BATCH_CHUNKS = 1024  # chunks in one batch write
MAX_BATCH_BYTES = 16 * 1024 * 1024  # chunk bytes in one batch write
MANIFEST_BYTES_PER_CHUNK = 80  # a manifest entry is 72 bytes: '["<64 hex>",<size>],'
MAX_MANIFEST_BYTES = 32 + MAX_BATCH_CHUNKS * MANIFEST_BYTES_PER_CHUNK
MAX_BODY_BYTES = MAX_MANIFEST_BYTES + MAX_BATCH_BYTES


def encode(items: Sequence[tuple[str, bytes | memoryview]]) -> bytes:
    """The request body for ``items`` (name, bytes); the caller keeps within the bounds."""
    manifest = json.dumps({"chunks": [[name, len(data)] for name, data in items]},
                          separators=(",", ":")).encode()
    return b"".join([manifest, b"\n", *(data for _, data in items)])


def check_length(declared: int) -> None:
    """``PayloadTooLarge`` for a body longer than any batch may be (before reading it)."""
    if declared > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"A batch write is at most {MAX_BATCH_CHUNKS} chunks and "
                              f"{MAX_BATCH_BYTES} bytes.")


def split(body: bytes | bytearray, max_chunk_bytes: int,
          allow_empty: bool = False) -> list[tuple[str, memoryview]]:
    """The (name, bytes) of each chunk of a batch body, in order; ``InvalidInput`` (400) for
    a malformed one, ``PayloadTooLarge`` (413) past a bound. The bytes are not hashed here.
    ``allow_empty``: a batch read's answer may hold no chunk at all."""
    end = body.find(b"\n", 0, MAX_MANIFEST_BYTES + 1)
    if end < 0:
        raise InvalidInput("A batch write starts with its manifest line.")
    try:
        entries = json.loads(body[:end])["chunks"]
    except (ValueError, KeyError, TypeError):
        raise InvalidInput("The batch manifest is not {\"chunks\": [[name, size], ...]}.") from None
    if not isinstance(entries, list) or not (entries or allow_empty):
        raise InvalidInput("A batch write names at least one chunk.")
    if len(entries) > MAX_BATCH_CHUNKS:
        raise PayloadTooLarge(f"A batch write is at most {MAX_BATCH_CHUNKS} chunks.")
    view = memoryview(body)
    offset = end + 1
    out: list[tuple[str, memoryview]] = []
    seen: set[str] = set()
    for entry in entries:
        if (not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[0], str)
                or type(entry[1]) is not int or not HASH_RE.fullmatch(entry[0])):
            raise InvalidInput("Each batch entry is [lowercase hex SHA-256, size in bytes].")
        name, size = entry
        if name in seen:
            raise InvalidInput(f"Chunk {name} is named twice in one batch.")
        if size < 0:
            raise InvalidInput("A chunk's size is a number of bytes.")
        if size > max_chunk_bytes:
            raise PayloadTooLarge(f"A chunk is at most {max_chunk_bytes} bytes here.")
        seen.add(name)
        out.append((name, view[offset:offset + size]))
        offset += size
    if offset - end - 1 > MAX_BATCH_BYTES:
        raise PayloadTooLarge(f"A batch write is at most {MAX_BATCH_BYTES} chunk bytes.")
    if offset != len(body):
        raise InvalidInput("The batch body's length does not match its manifest.")
    return out


def encode_names(names: Sequence[str]) -> bytes:
    """A batch read's request body."""
    return json.dumps({"chunks": list(names)}, separators=(",", ":")).encode()


def parse_names(body: bytes | bytearray) -> list[str]:
    """The chunks a batch read asks for: distinct names, at most ``MAX_BATCH_CHUNKS``."""
    try:
        names = json.loads(body)["chunks"]
    except (ValueError, KeyError, TypeError):
        raise InvalidInput("A batch read is {\"chunks\": [name, ...]}.") from None
    if not isinstance(names, list) or not names:
        raise InvalidInput("A batch read names at least one chunk.")
    if len(names) > MAX_BATCH_CHUNKS:
        raise PayloadTooLarge(f"A batch read is at most {MAX_BATCH_CHUNKS} chunks.")
    if not all(isinstance(n, str) and HASH_RE.fullmatch(n) for n in names):
        raise InvalidInput("A chunk name is the lowercase hex SHA-256 of its bytes.")
    if len(set(names)) != len(names):
        raise InvalidInput("A batch read names each chunk once.")
    return names
