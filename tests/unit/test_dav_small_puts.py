"""Small PUT bodies of one account stored together (dav/small_puts.py)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from minidropbox.core.errors import QuotaExceeded
from minidropbox.dav.small_puts import SmallStores
from minidropbox.service.accounts import Principal

ALICE = Principal(1, "alice", "app-password:1", 10, False, None)
BOB = Principal(2, "bob", "app-password:2", 20, False, None)


def body(i: int) -> tuple[str, bytes]:
    data = f"file {i}".encode()
    return hashlib.sha256(data).hexdigest(), data


class FakeChunks:
    """Records how bodies were stored; ``refuse`` names bodies that do not fit."""

    def __init__(self, refuse: frozenset[bytes] = frozenset()) -> None:
        self.alone: list[tuple[int, bytes]] = []
        self.batches: list[tuple[int, list[bytes]]] = []
        self.refuse = refuse
        self.gate = asyncio.Event()

    async def store_cut(self, principal: Principal, pieces: AsyncIterator[tuple[str, bytes]],
                        room: Any = None) -> None:
        async for _, data in pieces:
            await self.gate.wait()  # the first store stays in flight until the test says
            if data in self.refuse:
                raise QuotaExceeded("does not fit")
            self.alone.append((principal.user_id, data))

    async def store_batch(self, principal: Principal,
                          parts: list[tuple[str, bytes]]) -> list[int]:
        if any(data in self.refuse for _, data in parts):
            raise QuotaExceeded("the batch does not fit")
        self.batches.append((principal.user_id, [data for _, data in parts]))
        return [len(data) for _, data in parts]


async def _run(chunks: FakeChunks, who: list[Principal]) -> list[BaseException | None]:
    small = SmallStores(chunks)  # type: ignore[arg-type]
    tasks = [asyncio.create_task(small.store(p, *body(i), None)) for i, p in enumerate(who)]
    await asyncio.sleep(0.01)  # every PUT has arrived while the first store is in flight
    chunks.gate.set()
    return list(await asyncio.gather(*tasks, return_exceptions=True))


def test_a_lone_put_is_stored_alone_at_once() -> None:
    chunks = FakeChunks()
    chunks.gate.set()
    asyncio.run(_run(chunks, [ALICE]))
    assert chunks.alone == [(1, b"file 0")] and chunks.batches == []


def test_puts_that_arrive_while_one_is_stored_go_in_one_batch_per_account() -> None:
    chunks = FakeChunks()
    results = asyncio.run(_run(chunks, [ALICE, ALICE, BOB, ALICE, BOB, ALICE]))
    assert results == [None] * 6
    # The first of each account alone; Bob's second waited for his first and, the only one
    # waiting, is stored by the ordinary path; Alice's three waiting went in one batch.
    assert chunks.alone == [(1, b"file 0"), (2, b"file 2"), (2, b"file 4")]
    assert chunks.batches == [(1, [b"file 1", b"file 3", b"file 5"])]


def test_a_failed_batch_gives_each_put_the_answer_it_would_have_had_alone() -> None:
    chunks = FakeChunks(refuse=frozenset({b"file 2"}))
    results = asyncio.run(_run(chunks, [ALICE] * 4))
    assert results[0] is None and results[1] is None and results[3] is None
    assert isinstance(results[2], QuotaExceeded)
    assert chunks.batches == []
    assert [d for _, d in chunks.alone] == [b"file 0", b"file 1", b"file 3"]


@pytest.mark.parametrize("n", [3, 70])
def test_every_waiting_put_is_stored(n: int) -> None:
    chunks = FakeChunks()
    assert asyncio.run(_run(chunks, [ALICE] * n)) == [None] * n
    stored = [d for _, d in chunks.alone] + [d for _, b in chunks.batches for d in b]
    assert sorted(stored) == sorted(body(i)[1] for i in range(n))
