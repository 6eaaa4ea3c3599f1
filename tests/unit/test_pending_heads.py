"""The cap on connections waiting for their request head: per client address and overall,
the oldest pending connection makes room for a new one."""

from __future__ import annotations

import pytest

from minidropbox.api.pending_heads import PendingHeads


def test_a_client_over_its_cap_loses_its_oldest_connection() -> None:
    heads: PendingHeads[int] = PendingHeads(limit=100, per_client=3)
    assert [heads.admit(i, "a") for i in range(3)] == [[], [], []]
    assert heads.admit(3, "a") == [0]
    assert heads.admit(4, "a") == [1]
    assert heads.admit(10, "b") == []  # another address is not affected
    assert heads.count("a") == 3 and heads.count("b") == 1 and heads.count() == 4


def test_the_overall_cap_evicts_the_oldest_of_anyone() -> None:
    heads: PendingHeads[int] = PendingHeads(limit=4, per_client=3)
    for i in range(3):
        heads.admit(i, "a")
    heads.admit(10, "b")
    assert heads.admit(11, "b") == [0]
    assert heads.count() == 4 and heads.count("a") == 2


def test_finished_heads_free_their_place() -> None:
    heads: PendingHeads[int] = PendingHeads(limit=2, per_client=2)
    heads.admit(1, "a")
    heads.admit(2, "a")
    heads.remove(1)
    heads.remove(1)  # twice, or never admitted: ignored
    heads.remove(99)
    assert heads.admit(3, "a") == []
    assert heads.count("a") == 2
    heads.remove(2)
    heads.remove(3)
    assert heads.count() == 0 and heads.count("a") == 0


def test_a_flood_never_holds_more_than_the_caps() -> None:
    heads: PendingHeads[int] = PendingHeads(limit=50, per_client=20)
    evicted = 0
    for i in range(10_000):
        evicted += len(heads.admit(i, f"10.0.0.{i % 7}"))
        assert heads.count() <= 50
        assert all(heads.count(f"10.0.0.{k}") <= 20 for k in range(7))
    assert evicted == 10_000 - heads.count()


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        PendingHeads(limit=0, per_client=1)
    with pytest.raises(ValueError):
        PendingHeads(limit=1, per_client=0)
