"""The sync simulation (``world.py``): thousands of seeded schedules of three clients with
crashes, network failures and concurrent users, each checked against the invariants.

- ``make test`` runs ``SEEDS`` seeds (``MINIDROPBOX_SIM_SEEDS`` changes how many), in
  batches so several test workers share them;
- ``make soak`` (``MINIDROPBOX_SOAK=1``) runs ``SOAK_SEEDS`` more;
- ``MINIDROPBOX_SIM_SEED=N pytest tests/simulation -k replay`` replays seed N and prints
  its trace. Every failure prints that line.
"""

from __future__ import annotations

import os

import pytest

from tests.simulation.world import run_seeds, scratch, simulate

SEEDS = int(os.environ.get("MINIDROPBOX_SIM_SEEDS", "2000"))
BATCHES = 20
SOAK_SEEDS = 100_000
SOAK_BATCHES = 20
SOAK = os.environ.get("MINIDROPBOX_SOAK") == "1"


def _batch(total: int, batches: int, index: int, offset: int = 0) -> range:
    size = -(-total // batches)
    start = offset + index * size
    return range(start, min(offset + total, start + size))


def _check(failures: list[str], ran: range) -> None:
    assert not failures, (f"{len(failures)} of {len(ran)} seeds failed; the first:\n"
                          + failures[0])


@pytest.mark.parametrize("batch", range(BATCHES))
def test_seeded_schedules_keep_the_invariants(batch: int) -> None:
    seeds = _batch(SEEDS, BATCHES, batch)
    _check(run_seeds(seeds), seeds)


@pytest.mark.slow
@pytest.mark.skipif(not SOAK, reason="100,000 seeds: make soak (MINIDROPBOX_SOAK=1)")
@pytest.mark.parametrize("batch", range(SOAK_BATCHES))
def test_soak_seeded_schedules_keep_the_invariants(batch: int) -> None:
    seeds = _batch(SOAK_SEEDS, SOAK_BATCHES, batch, offset=1_000_000)
    _check(run_seeds(seeds), seeds)


def test_replay_a_seed_exactly() -> None:
    """The same seed gives the same schedule, trace and trees (``MINIDROPBOX_SIM_SEED``
    picks the seed: a failing one then fails here with its whole trace)."""
    seed = int(os.environ.get("MINIDROPBOX_SIM_SEED", "7"))
    runs = []
    for _ in range(2):
        with scratch() as workdir:
            world = simulate(seed, workdir)
            runs.append((world.trace, world.server_tree(),
                         [world.local_tree(c) for c in world.clients]))
    assert runs[0] == runs[1]
    print("\n".join(runs[0][0]))
