"""Journal cursors: opaque tokens a client hands back to mean "everything up to here".

A cursor names a position in one namespace's journal on one server *generation* (the server
gets a new generation when it is restored from a backup). It is ``<generation>.<seq>.<mac>``,
where the MAC is an HMAC-SHA256 over generation, namespace and position under a key only the
server knows. So a cursor from another server, another namespace, or from before a restore
does not verify, and the client is told to start over (410 ``reset``) instead of silently
missing changes. Clients must treat cursors as opaque strings.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from minidropbox.core.errors import CursorReset

MAC_BYTES = 12  # 96 bits: forging one needs ~2**96 tries against an online server
MAX_CURSOR_LENGTH = 200

NOT_OURS = "This cursor was not issued by this server for this account; do a full listing."
OLD_GENERATION = ("This cursor is from before the server was restored from a backup (or from "
                  "another server); do a full listing.")


def _mac(key: bytes, generation: str, namespace_id: int, seq: int) -> str:
    message = f"{generation}:{namespace_id}:{seq}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()[:MAC_BYTES]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def encode_cursor(key: bytes, generation: str, namespace_id: int, seq: int) -> str:
    """The cursor for position ``seq`` (0 = before the first change) of a namespace."""
    if seq < 0:
        raise ValueError("a journal position is never negative")
    return f"{generation}.{seq}.{_mac(key, generation, namespace_id, seq)}"


def decode_cursor(key: bytes, generation: str, namespace_id: int, token: str) -> int:
    """The position a cursor names, or ``CursorReset`` if this server did not issue it.

    Checks only authenticity; whether the position is still retained is the caller's job.
    """
    if not token or len(token) > MAX_CURSOR_LENGTH:
        raise CursorReset(NOT_OURS)
    parts = token.rsplit(".", 2)  # from the right: a generation id could hold a dot
    if len(parts) != 3 or not parts[1].isdigit() or not parts[1].isascii():
        raise CursorReset(NOT_OURS)
    cursor_generation, seq_text, mac = parts
    if cursor_generation != generation:
        raise CursorReset(OLD_GENERATION)
    seq = int(seq_text)
    if seq_text != str(seq):  # one spelling per position: "007" is not "7"
        raise CursorReset(NOT_OURS)
    if not hmac.compare_digest(mac, _mac(key, generation, namespace_id, seq)):
        raise CursorReset(NOT_OURS)
    return seq


def retained_floor(head: int, oldest: int | None) -> int:
    """The oldest position a client may still resume from.

    The journal is gap-free and trimmed from the front, so a client at position ``c`` can be
    given every later change exactly when ``oldest - 1 <= c``; with nothing retained only the
    head itself is a valid position.
    """
    return oldest - 1 if oldest is not None else head


def check_position(seq: int, head: int, oldest: int | None, retention: int) -> None:
    """``CursorReset`` unless the changes after ``seq`` are all still in the journal."""
    if seq > head:
        raise CursorReset("This cursor is ahead of the server's history (was the server "
                          "restored from a backup?); do a full listing.")
    if seq < retained_floor(head, oldest):
        raise CursorReset(f"This cursor is older than the history the server keeps (the last "
                          f"{retention} changes); do a full listing.")
