"""The client's side of direct transfers (docs/PROTOCOL.md, "Direct transfers"): chunk bytes
go to and come from the storage nodes the API names, with the grants it signs.

``NodeLink`` is one keep-alive HTTP pool to every node; ``put`` answers the node's receipt,
``get`` the verified bytes. Faults are ``NodeFault`` (the caller tries the next node, then the
API's proxy route) or ``InvalidGrant`` (the grant expired or the node restarted: ask the API
again). Node URLs come from the API's answers, never from configuration: only
``client/api.py`` knows where the API is.

A node that cannot be reached (a private network, NAT) is remembered for ``UNREACHABLE_FOR``
seconds, so a transfer of thousands of chunks tries it once, not once per chunk, and goes
through the API meanwhile.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from minidropbox.client.api import error_from_body
from minidropbox.client.bandwidth import Bandwidth
from minidropbox.core import errors
from minidropbox.core.grants import COPIES_HEADER

UNREACHABLE_FOR = 30.0
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 30.0  # a PUT waits for the node's fsync
GET_TIMEOUT = 10.0  # a GET of at most one chunk; a hedge covers a slow one long before
HEDGE_MIN, HEDGE_MAX = 0.25, 2.0


# How the R copies of a chunk are written when ``MINIDROPBOX_REPLICATION`` does not say:
# measured both ways in one run (bench/README.md, "Chain replication against fan-out").
DEFAULT_CHAIN = False


def replication_is_chain(setting: str | None) -> bool:
    """``MINIDROPBOX_REPLICATION``: ``chain`` or ``fanout`` (unset: ``DEFAULT_CHAIN``)."""
    if not setting:
        return DEFAULT_CHAIN
    if setting not in ("chain", "fanout"):
        raise errors.InvalidInput(
            f"MINIDROPBOX_REPLICATION must be chain or fanout, not {setting!r}.")
    return setting == "chain"


class NodeFault(errors.MiniDropboxError):
    """A storage node could not take or give the chunk; another node or the API will."""

    code = "node_fault"
    status = 503
    exit_code = 7


class CorruptCopy(NodeFault):
    """A storage node sent bytes that do not hash to the chunk's name."""

    code = "corrupt_copy"


@dataclass(frozen=True)
class UploadGrant:
    """Where to send one chunk (node URLs, in order) and the grant the nodes accept."""

    hash: str
    size: int
    nodes: tuple[str, ...]
    copies: int  # how many of ``nodes`` must hold it
    grant: str

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> UploadGrant:
        return cls(str(body["hash"]), int(body["size"]), tuple(str(u) for u in body["nodes"]),
                   int(body["copies"]), str(body["grant"]))


@dataclass(frozen=True)
class PlannedChunk:
    """One chunk of a file: where it sits in the file, who holds it, and a read grant
    (``grant`` None: only the API's proxy route serves it)."""

    hash: str
    size: int
    offset: int
    nodes: tuple[str, ...]
    grant: str | None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> PlannedChunk:
        grant = body.get("grant")
        return cls(str(body["hash"]), int(body["size"]), int(body["offset"]),
                   tuple(str(u) for u in body["nodes"]), None if grant is None else str(grant))


class NodeLink:
    """Keep-alive connections to the storage nodes, shared by every transfer thread."""

    def __init__(self, transport: httpx.BaseTransport | None = None,
                 clock: Any = time.monotonic, bandwidth: Bandwidth | None = None) -> None:
        self.http = httpx.Client(timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
                                 limits=httpx.Limits(max_connections=128,
                                                     max_keepalive_connections=32),
                                 transport=transport)
        self.clock = clock
        self.bandwidth = bandwidth  # --bwlimit, shared with the API path of the same Remote
        self._unreachable: dict[str, float] = {}
        self._slow: dict[str, float] = {}
        self._latency: float | None = None  # moving average of a chunk GET, seconds
        self._lock = threading.Lock()
        self.requests = 0

    def close(self) -> None:
        self.http.close()

    def reachable(self, url: str) -> bool:
        with self._lock:
            until = self._unreachable.get(url)
            if until is None:
                return True
            if self.clock() >= until:
                del self._unreachable[url]
                return True
            return False

    def read_order(self, urls: Sequence[str]) -> list[str]:
        """The reachable ``urls``, those that were slow lately last (the API's order kept)."""
        now = self.clock()
        with self._lock:
            slow = {u for u, until in self._slow.items() if until > now}
        usable = [u for u in urls if self.reachable(u)]
        return sorted(usable, key=lambda u: u in slow)

    def note_slow(self, url: str) -> None:
        """A hedge had to cover for ``url``: read from it last for a while."""
        with self._lock:
            self._slow[url] = self.clock() + UNREACHABLE_FOR

    def note_latency(self, seconds: float) -> None:
        with self._lock:
            self._latency = seconds if self._latency is None else \
                0.8 * self._latency + 0.2 * seconds

    def hedge_delay(self) -> float:
        """How long a chunk GET may take before the next holder is asked too: four times
        the usual, within [``HEDGE_MIN``, ``HEDGE_MAX``] seconds."""
        with self._lock:
            usual = self._latency
        return HEDGE_MAX / 2 if usual is None else min(HEDGE_MAX, max(HEDGE_MIN, 4 * usual))

    def _mark_unreachable(self, url: str) -> None:
        with self._lock:
            self._unreachable[url] = self.clock() + UNREACHABLE_FOR

    def _request(self, method: str, url: str, chunk_hash: str, grant: str,
                 **kwargs: Any) -> httpx.Response:
        try:
            with self._lock:
                self.requests += 1
            kwargs.setdefault("headers", {"Authorization": f"Grant {grant}"})
            response = self.http.request(method, f"{url}/chunks/{chunk_hash}", **kwargs)
        except httpx.TransportError as exc:
            if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                self._mark_unreachable(url)
            raise NodeFault(f"Storage node {url}: {type(exc).__name__}") from exc
        if response.status_code == 403:
            error = error_from_body(403, _json(response))
            raise error if isinstance(error, errors.InvalidGrant) else NodeFault(error.message)
        if response.status_code >= 400:
            raise NodeFault(f"Storage node {url} answered {response.status_code}.")
        return response

    def put(self, url: str, chunk_hash: str, data: bytes, grant: str) -> str:
        """Store ``data`` at the node; its receipt (the node verified the hash, fsynced)."""
        if self.bandwidth is not None:
            self.bandwidth.take(len(data))
        response = self._request("PUT", url, chunk_hash, grant, content=data)
        receipt = _json(response).get("receipt") if isinstance(_json(response), dict) else None
        if not isinstance(receipt, str):
            raise NodeFault(f"Storage node {url} sent no receipt.")
        return receipt

    def put_chain(self, url: str, chunk_hash: str, data: bytes, grant: str, copies: int,
                  position: int) -> dict[int, str]:
        """Store ``data`` at the node (the grant's ``position``-th), which passes it on to
        the next nodes of the grant until ``copies`` hold it (node/chain.py): the receipts
        by position in the grant. Fewer than ``copies`` when the chain came up short."""
        if self.bandwidth is not None:
            self.bandwidth.take(len(data))
        response = self._request("PUT", url, chunk_hash, grant, content=data,
                                 headers={"Authorization": f"Grant {grant}",
                                          COPIES_HEADER: str(copies)})
        body = _json(response)
        receipt = body.get("receipt") if isinstance(body, dict) else None
        if not isinstance(receipt, str):
            raise NodeFault(f"Storage node {url} sent no receipt.")
        held = {position: receipt}
        for item in (body.get("chain") or []) if isinstance(body.get("chain"), list) else []:
            if isinstance(item, dict) and isinstance(item.get("node"), int) and isinstance(
                    item.get("receipt"), str):
                held.setdefault(item["node"], item["receipt"])
        return held

    def get(self, url: str, chunk_hash: str, grant: str) -> bytes:
        """The chunk's bytes, verified against its name."""
        data = self._request("GET", url, chunk_hash, grant,
                             timeout=httpx.Timeout(GET_TIMEOUT, connect=CONNECT_TIMEOUT)).content
        if hashlib.sha256(data).hexdigest() != chunk_hash:
            raise CorruptCopy(f"Storage node {url} sent a corrupt copy of {chunk_hash[:12]}.")
        return data  # paced by the caller, once per chunk whichever holder answered


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


_shared: NodeLink | None = None
_shared_lock = threading.Lock()


def shared_node_link() -> NodeLink:
    """The process's one pool of connections to the storage nodes (made on first use, never
    at import): nodes are the same for every account and every ``Remote``, so a client that
    makes a ``Remote`` per file still reuses its connections, and what it learned about a
    slow or unreachable node holds for all."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = NodeLink()
        return _shared
