"""What a chunk needs to be healthy again: a pure rule over its replicas and the nodes' states.

A replica *counts* towards the R a chunk needs when its row is ``ok`` and its node is neither
``down`` nor leaving (draining). A ``suspect`` node still counts: it is inside its grace period,
and copying every chunk of a node that blips for a second would flood the cluster.

- New copies go to the next writable nodes (``up``, not leaving) in the chunk's rendezvous
  order, skipping nodes that hold a ``bad`` copy (a node keeps an existing file on PUT, so a
  corrupt copy must be deleted before that node can take the chunk again).
- Copies are read only from ``ok`` replicas on nodes that answer, ``up`` ones first; never from
  a ``bad`` one, so corruption is never copied.
- A copy that is bad, sits on a leaving node, or (when rebalancing) lies outside the placement
  is dropped only once R counted copies exist without it, and only from a node that is ``up``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from minidropbox.core.health import DOWN, UP
from minidropbox.core.placement import place_replicas, rank_nodes

OK, BAD = "ok", "bad"


@dataclass(frozen=True)
class RepairPlan:
    """The work for one chunk: copy from ``sources`` (tried in order) to each of ``targets``,
    then, once every target holds a verified copy, delete the copies on ``drop``."""

    chunk_hash: str
    wanted: int
    counted: tuple[str, ...]
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    drop: tuple[str, ...]

    @property
    def shortfall(self) -> int:
        """How many counted copies the chunk lacks (0 when it has R)."""
        return max(0, self.wanted - len(self.counted))

    @property
    def idle(self) -> bool:
        """Nothing to do now (healthy, or nothing can be done until a node comes back)."""
        return not self.targets and not self.drop


def plan_chunk(chunk_hash: str, replicas: Mapping[str, str], node_states: Mapping[str, str],
               leaving: set[str] | frozenset[str], wanted: int,
               rebalance: bool = False) -> RepairPlan:
    """The repair for one chunk.

    ``replicas`` maps node name to the replica's state (``ok`` or ``bad``); ``node_states``
    maps every known node to ``up``, ``suspect`` or ``down`` (a node missing from it is taken
    as ``down``); ``leaving`` are nodes being drained; ``wanted`` is R. With ``rebalance`` the
    chunk is also moved onto its rendezvous placement and copies outside it become surplus.
    """
    def state(node: str) -> str:
        return node_states.get(node, DOWN)

    writable = [n for n in node_states if state(n) == UP and n not in leaving]
    ok = [n for n, s in replicas.items() if s == OK and state(n) != DOWN]
    counted = [n for n in ok if n not in leaving]
    sources = sorted(rank_nodes(chunk_hash, ok), key=lambda n: state(n) != UP)
    free = [n for n in rank_nodes(chunk_hash, writable) if n not in replicas]
    surplus: list[str] = []
    if rebalance:
        placement = place_replicas(chunk_hash, writable, wanted)
        targets = [n for n in placement if n in free]
        surplus = [n for n in counted if n not in placement]
    else:
        targets = free[: max(0, wanted - len(counted))]
    if not sources:
        targets = []  # nothing intact to copy from: wait for a holder to come back
    after = len(counted) + len(targets)
    drop: list[str] = []
    if after >= wanted:
        drop = [n for n, s in replicas.items()
                if (s == BAD or n in leaving) and state(n) == UP]
        spare = after - wanted
        drop += [n for n in surplus if state(n) == UP][:spare]
    return RepairPlan(chunk_hash, wanted, tuple(counted), tuple(sources), tuple(targets),
                      tuple(drop))
