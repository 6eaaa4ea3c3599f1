"""Grants and receipts: how chunk bytes go straight between clients and storage nodes while the
API keeps every decision.

- A **grant** is the API's word to a storage node: "account A may PUT (or GET) the chunk named
  H, at most N bytes, on these nodes, until time T". The client carries it to the node in
  ``Authorization: Grant <token>``; the node checks the signature, the method, the chunk
  name in the URL, its own node id in the list, the size and the expiry. A grant holds no
  secret: leaking one lets its bearer do exactly that one thing until it expires.
- A **receipt** is a node's word to the API: "node D holds the chunk H, S bytes, durably,
  sent by account A, written under fence epoch F". The commit path presents receipts; the
  API records replica rows and the account's ownership of H only for receipts signed by a
  known node *for that account* — proof of possession (the Dropship defence) still holds,
  because a node only signs after hashing the bytes it received.

Tokens are ``<payload>.<mac>``: the payload is compact JSON in unpadded base64url and the MAC
is HMAC-SHA256 under a key named in the payload (``k``), so keys rotate without a flag day
(docs/DESIGN.md, "Direct transfers"). Grants and receipts use different keys (each derived
from the key material with its purpose), so one can never pass for the other.

Pure: the caller passes the keys and the time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from minidropbox.core.chunking import HASH_RE
from minidropbox.core.errors import InvalidGrant, InvalidReceipt

MAX_TOKEN_LENGTH = 4096  # a grant names at most a handful of nodes
MAX_NODES = 16
MAC_BYTES = 32
PUT, GET = "put", "get"
# A PUT under a grant that names its nodes' URLs may ask the node for this many copies, its
# own included: it forwards the bytes along the grant's nodes (chain replication).
COPIES_HEADER = "minidropbox-copies"
METHODS = (PUT, GET)


def derive_key(material: str, purpose: str) -> bytes:
    """The key for one purpose (``grant``, ``receipt``) from a key's material (a secret)."""
    return hmac.new(material.encode(), f"minidropbox {purpose} key v1".encode(),
                    hashlib.sha256).digest()


@dataclass(frozen=True)
class KeyRing:
    """Signing keys by id: ``current`` signs, every key in ``keys`` verifies (rotation)."""

    current: str
    keys: Mapping[str, bytes]

    @classmethod
    def from_material(cls, purpose: str, materials: Sequence[tuple[str, str]]) -> KeyRing:
        """``materials``: ``(key id, secret)`` pairs, the signing key first."""
        if not materials:
            raise ValueError("a key ring needs at least one key")
        return cls(materials[0][0], {kid: derive_key(secret, purpose)
                                     for kid, secret in materials})


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(ring: KeyRing, body: dict[str, object]) -> str:
    payload = _b64(json.dumps({**body, "k": ring.current}, separators=(",", ":"),
                              sort_keys=True).encode())
    mac = hmac.new(ring.keys[ring.current], payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def _open(ring: KeyRing, token: str) -> dict[str, object] | None:
    """The payload of a token signed by a key of ``ring``; None for anything else."""
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        return None
    payload, _, mac_text = token.partition(".")
    try:
        mac = _unb64(mac_text)
        body = json.loads(_unb64(payload))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(body, dict) or not isinstance(body.get("k"), str):
        return None
    key = ring.keys.get(body["k"])
    if key is None or len(mac) != MAC_BYTES:
        return None
    if not hmac.compare_digest(mac, hmac.new(key, payload.encode(), hashlib.sha256).digest()):
        return None
    return body


def _int(body: Mapping[str, object], key: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(key)
    return value


def _str(body: Mapping[str, object], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise ValueError(key)
    return value


@dataclass(frozen=True)
class Grant:
    """What the API allowed: ``method`` on chunk ``chunk`` (≤ ``max_size`` bytes for a PUT) by
    ``account`` on the nodes ``nodes`` (node ids) until ``expires`` (epoch seconds).
    ``fence`` is the deletion-fence epoch the upload was admitted under (PUT only): the
    receipt carries it back, so a deletion that overlaps the upload voids the receipt."""

    account: int
    chunk: str
    max_size: int
    nodes: tuple[str, ...]
    method: str
    expires: int
    fence: int = 0
    # For a PUT, the URLs the cluster knows ``nodes`` by, in the same order: a node that
    # took the bytes forwards them to the next (chain replication), and only to these, so
    # a client can never make a node send anything anywhere else.
    urls: tuple[str, ...] = ()

    def sign(self, ring: KeyRing) -> str:
        body: dict[str, object] = {"t": "g", "a": self.account, "h": self.chunk,
                                   "n": self.max_size, "d": list(self.nodes), "m": self.method,
                                   "e": self.expires, "f": self.fence}
        if self.urls:
            body["u"] = list(self.urls)
        return _sign(ring, body)

    def next_hops(self, node_id: str) -> list[tuple[int, str]]:
        """(position in ``nodes``, URL) of the nodes after ``node_id``: where a node that
        holds the chunk may forward it, in order."""
        if not self.urls or node_id not in self.nodes:
            return []
        start = self.nodes.index(node_id) + 1
        return list(enumerate(self.urls))[start:]


def open_grant(ring: KeyRing, token: str, *, chunk: str, method: str, node_id: str,
               now: float, size: int | None = None) -> Grant:
    """The grant ``token`` stands for if it allows ``method`` on ``chunk`` at node
    ``node_id`` now (and ``size`` bytes, when known); ``InvalidGrant`` otherwise."""
    body = _open(ring, token)
    if body is None or body.get("t") != "g":
        raise InvalidGrant("This grant was not signed by this cluster.")
    try:
        nodes, urls = body.get("d"), body.get("u", [])
        if not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
            raise ValueError("d")
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls) or (
                urls and len(urls) != len(nodes)):
            raise ValueError("u")
        grant = Grant(_int(body, "a"), _str(body, "h"), _int(body, "n"), tuple(nodes),
                      _str(body, "m"), _int(body, "e"), _int(body, "f"), tuple(urls))
    except ValueError:
        raise InvalidGrant("This grant is malformed.") from None
    if grant.chunk != chunk:
        raise InvalidGrant("This grant is for another chunk.")
    if grant.method != method:
        raise InvalidGrant(f"This grant does not allow {method.upper()}.")
    if node_id not in grant.nodes:
        raise InvalidGrant("This grant is for other storage nodes.")
    if now >= grant.expires:
        raise InvalidGrant("This grant has expired; ask the API for a new one.")
    if size is not None and size > grant.max_size:
        raise InvalidGrant(f"This grant allows at most {grant.max_size} bytes.")
    return grant


def make_grant(ring: KeyRing, *, account: int, chunk: str, max_size: int,
               nodes: Sequence[str], method: str, expires: int, fence: int = 0,
               urls: Sequence[str] = ()) -> str:
    """A signed grant (see ``Grant``)."""
    if not HASH_RE.fullmatch(chunk) or method not in METHODS:
        raise ValueError("a grant names one chunk and one method")
    if not 0 < len(nodes) <= MAX_NODES:
        raise ValueError("a grant names between 1 and 16 nodes")
    if urls and (len(urls) != len(nodes) or method != PUT):
        raise ValueError("a PUT grant may name the URL of each of its nodes")
    return Grant(account, chunk, max_size, tuple(nodes), method, expires, fence,
                 tuple(urls)).sign(ring)


@dataclass(frozen=True)
class Receipt:
    """A node's statement that it holds ``chunk`` (``size`` bytes) durably, sent by
    ``account`` under grant fence epoch ``fence``, signed at ``issued``."""

    account: int
    chunk: str
    size: int
    node: str
    issued: int
    fence: int

    def sign(self, ring: KeyRing) -> str:
        return _sign(ring, {"t": "r", "a": self.account, "h": self.chunk, "s": self.size,
                            "d": self.node, "i": self.issued, "f": self.fence})


def open_receipt(ring: KeyRing, token: str, *, account: int, now: float,
                 max_age: float) -> Receipt:
    """The receipt ``token`` stands for if a node signed it for ``account`` within
    ``max_age`` seconds; ``InvalidReceipt`` otherwise."""
    body = _open(ring, token)
    if body is None or body.get("t") != "r":
        raise InvalidReceipt("This receipt was not signed by a storage node of this cluster.")
    try:
        receipt = Receipt(_int(body, "a"), _str(body, "h"), _int(body, "s"), _str(body, "d"),
                          _int(body, "i"), _int(body, "f"))
    except ValueError:
        raise InvalidReceipt("This receipt is malformed.") from None
    if not HASH_RE.fullmatch(receipt.chunk) or receipt.size < 0:
        raise InvalidReceipt("This receipt is malformed.")
    if receipt.account != account:
        raise InvalidReceipt("This receipt was issued to another account.")
    if not now - max_age <= receipt.issued <= now + 60:
        raise InvalidReceipt("This receipt is too old; send the chunk again.")
    return receipt
