"""The repair rule (core/repair.py) and the pacer, with no I/O."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from minidropbox.core.pacing import Pacer
from minidropbox.core.placement import place_replicas, rank_nodes
from minidropbox.core.repair import plan_chunk

NODES = ["n1", "n2", "n3", "n4"]
H = hashlib.sha256(b"chunk").hexdigest()


def up(*down: str, suspect: tuple[str, ...] = ()) -> dict[str, str]:
    return {n: "down" if n in down else "suspect" if n in suspect else "up" for n in NODES}


def test_healthy_chunk_needs_nothing() -> None:
    holders = place_replicas(H, NODES, 2)
    plan = plan_chunk(H, {n: "ok" for n in holders}, up(), set(), 2)
    assert plan.idle and plan.shortfall == 0


def test_a_down_holder_is_replaced_by_the_next_node_in_rendezvous_order() -> None:
    first, second = place_replicas(H, NODES, 2)
    plan = plan_chunk(H, {first: "ok", second: "ok"}, up(first), set(), 2)
    survivors = [n for n in rank_nodes(H, NODES) if n not in (first, second)]
    assert plan.targets == (survivors[0],)
    assert plan.sources == (second,)
    assert plan.drop == ()  # the down copy may come back; it is not deleted


def test_a_suspect_holder_still_counts() -> None:
    first, second = place_replicas(H, NODES, 2)
    plan = plan_chunk(H, {first: "ok", second: "ok"}, up(suspect=(first,)), set(), 2)
    assert plan.idle


def test_bad_copy_is_never_a_source_and_is_dropped_once_replaced() -> None:
    first, second = place_replicas(H, NODES, 2)
    plan = plan_chunk(H, {first: "bad", second: "ok"}, up(), set(), 2)
    assert plan.sources == (second,)
    assert first not in plan.targets and len(plan.targets) == 1
    assert plan.drop == (first,)


def test_no_intact_copy_means_no_copy_and_no_drop() -> None:
    first, second = place_replicas(H, NODES, 2)
    plan = plan_chunk(H, {first: "bad", second: "bad"}, up(), set(), 2)
    assert plan.targets == () and plan.drop == () and plan.shortfall == 2


def test_draining_node_is_copied_off_then_dropped() -> None:
    first, second = place_replicas(H, NODES, 2)
    plan = plan_chunk(H, {first: "ok", second: "ok"}, up(), {first}, 2)
    assert len(plan.targets) == 1 and first not in plan.targets
    assert plan.drop == (first,)
    assert first in plan.sources


def test_rebalance_moves_onto_the_placement_without_going_below_r() -> None:
    placement = place_replicas(H, NODES, 2)
    others = [n for n in NODES if n not in placement]
    plan = plan_chunk(H, {others[0]: "ok", others[1]: "ok"}, up(), set(), 2, rebalance=True)
    assert set(plan.targets) == set(placement)
    assert set(plan.drop) == set(others)
    plain = plan_chunk(H, {others[0]: "ok", others[1]: "ok"}, up(), set(), 2)
    assert plain.idle


@given(st.dictionaries(st.sampled_from(NODES), st.sampled_from(["ok", "bad"])),
       st.dictionaries(st.sampled_from(NODES), st.sampled_from(["up", "suspect", "down"])),
       st.sets(st.sampled_from(NODES)), st.integers(1, 3), st.booleans())
def test_never_drops_below_r_and_never_copies_corruption(replicas: dict[str, str],
                                                         states: dict[str, str],
                                                         leaving: set[str], wanted: int,
                                                         rebalance: bool) -> None:
    plan = plan_chunk(H, replicas, states, leaving, wanted, rebalance)
    assert all(replicas[s] == "ok" for s in plan.sources)
    assert all(states.get(t) == "up" and t not in leaving for t in plan.targets)
    assert all(t not in replicas for t in plan.targets)
    if plan.drop:
        remaining = (set(plan.counted) | set(plan.targets)) - set(plan.drop)
        assert len(remaining) >= wanted


def test_pacer_spreads_work() -> None:
    pacer = Pacer(rate=10)
    assert pacer.delay(100.0) == 0.0
    assert abs(pacer.delay(100.0) - 0.1) < 1e-9
    assert abs(pacer.delay(100.0, units=5) - 0.2) < 1e-9
    assert pacer.delay(200.0) == 0.0  # idle time is not saved up
    assert Pacer(rate=0).delay(1.0) == 0.0
