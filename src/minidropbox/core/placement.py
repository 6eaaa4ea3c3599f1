"""Replica placement by rendezvous (highest-random-weight) hashing.

Every node gets a score per chunk; the chunk lives on the R highest-scoring usable nodes. Adding
or removing a node moves only the chunks whose top R change, and a down node's place goes to
the next node in that chunk's order, so reads and repairs know where to look without a table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence


def node_score(chunk_hash: str, node_name: str) -> int:
    """The rendezvous weight of ``node_name`` for ``chunk_hash``."""
    digest = hashlib.sha256(f"{node_name}\x00{chunk_hash}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def rank_nodes(chunk_hash: str, node_names: Iterable[str]) -> list[str]:
    """All nodes in this chunk's preference order, best first (ties broken by name)."""
    return sorted(node_names, key=lambda n: (-node_score(chunk_hash, n), n))


def place_replicas(chunk_hash: str, usable_nodes: Sequence[str], replicas: int) -> list[str]:
    """The nodes that should hold ``chunk_hash``: the first ``replicas`` usable ones in order.

    Returns fewer than ``replicas`` names when too few nodes are usable; the caller decides
    whether that is an error (writes) or a repair to schedule later.
    """
    return rank_nodes(chunk_hash, usable_nodes)[:replicas]


def misplaced(chunk_hash: str, holders: Iterable[str], usable_nodes: Sequence[str],
              replicas: int) -> tuple[list[str], list[str]]:
    """For rebalancing: (nodes that should gain a copy, nodes whose copy is surplus)."""
    target = place_replicas(chunk_hash, usable_nodes, replicas)
    held = set(holders)
    gain = [n for n in target if n not in held]
    surplus = [n for n in held if n not in target]
    return gain, surplus
