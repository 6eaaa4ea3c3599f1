"""Chain replication: a node that took a chunk under a PUT grant passes it on to the next
node the grant names, as HDFS datanodes do, so the client sends each chunk once instead of
R times (docs/DESIGN.md, "Direct transfers").

The client asks for it with ``Minidropbox-Copies: N`` (this node and N - 1 more). The node
forwards the bytes it received, with the same grant and ``Minidropbox-Copies: N - 1``, to
the next node after itself in the grant (a failed one's place going to the one after), only
at the URLs the API signed into the grant: a client can never make a node send anything to
an address of its choosing. The next node checks the grant and the hash on its own, exactly
as for a client's PUT; no secret travels. Each node answers the receipts it and the nodes
after it signed, with their positions in the grant, so the client knows which nodes hold the
chunk and sends it itself to the others when the chain came up short.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from minidropbox.core.grants import COPIES_HEADER, Grant

log = logging.getLogger("minidropbox.node.chain")

# Under the client's own wait for a PUT (30 s, client/nodes.py): a hung next node makes this
# node answer a short chain the client makes up for, before the client gives up on it too.
FORWARD_TIMEOUT = httpx.Timeout(20.0, connect=3.0)


def copies_asked(header: str | None, grant: Grant | None) -> int:
    """How many copies a PUT asks for, this node's included (1: no chain)."""
    if grant is None or not grant.urls or header is None or not header.isdigit():
        return 1
    return max(1, min(int(header), len(grant.nodes)))


def chain_answer(body: Any, grant: Grant, position: int) -> list[tuple[int, str]]:
    """(position, receipt) pairs of the answer of the grant's ``position``-th node, each
    position a node of the grant (the last node of a chain answers its receipt alone)."""
    if not isinstance(body, dict):
        return []
    items = body.get("chain")
    out: list[tuple[int, str]] = []
    if items is None and isinstance(body.get("receipt"), str):
        out.append((position, body["receipt"]))
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        node, receipt = item.get("node"), item.get("receipt")
        if (isinstance(node, int) and not isinstance(node, bool)
                and 0 <= node < len(grant.nodes) and isinstance(receipt, str)):
            out.append((node, receipt))
    return out


class Forwarder:
    """This node's connections to the next ones in a chain (made on first use)."""

    def __init__(self) -> None:
        self._http: httpx.AsyncClient | None = None

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=FORWARD_TIMEOUT)
        return self._http

    async def forward(self, grant: Grant, token: str, node_id: str, name: str, data: bytes,
                      copies: int) -> list[tuple[int, str]]:
        """Receipts of ``copies`` more nodes after ``node_id`` that now hold ``data``; fewer
        when the next nodes failed (never raises: the client makes up for it)."""
        held: dict[int, str] = {}
        for position, url in grant.next_hops(node_id):
            if len(held) >= copies:
                break
            if position in held:
                continue
            try:
                response = await self._client().put(
                    f"{url}/chunks/{name}", content=data,
                    headers={"Authorization": f"Grant {token}",
                             COPIES_HEADER: str(copies - len(held))})
            except httpx.HTTPError as exc:
                log.warning("chain: %s did not take %s: %s", url, name[:12],
                            type(exc).__name__)
                continue
            if response.status_code not in (200, 201):
                log.warning("chain: %s answered %s for %s", url, response.status_code,
                            name[:12])
                continue
            try:
                body = response.json()
            except ValueError:
                continue
            for got, receipt in chain_answer(body, grant, position):
                held.setdefault(got, receipt)
        return list(held.items())
