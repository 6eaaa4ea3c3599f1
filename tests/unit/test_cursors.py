"""Journal cursors and reconnect backoff: the pure rules behind /changes and notifications."""

from __future__ import annotations

import random

import pytest

from minidropbox.core.backoff import Backoff
from minidropbox.core.cursors import (
    OLD_GENERATION,
    check_position,
    decode_cursor,
    encode_cursor,
    retained_floor,
)
from minidropbox.core.errors import CursorReset

KEY = b"k" * 32
GEN = "0123456789abcdef"


def test_round_trip_and_opaque_but_stable() -> None:
    for seq in (0, 1, 41, 2**40):
        token = encode_cursor(KEY, GEN, 7, seq)
        assert decode_cursor(KEY, GEN, 7, token) == seq
        assert encode_cursor(KEY, GEN, 7, seq) == token  # one spelling per position
    assert len({encode_cursor(KEY, GEN, 7, s) for s in range(100)}) == 100
    with pytest.raises(ValueError):
        encode_cursor(KEY, GEN, 7, -1)
    # Whatever a restore chose as the generation id, dots included, cursors still parse.
    dotted = encode_cursor(KEY, "restored.2026", 7, 9)
    assert decode_cursor(KEY, "restored.2026", 7, dotted) == 9


@pytest.mark.parametrize("forge", [
    lambda t: t.replace(".5.", ".6."),                           # another position, same MAC
    lambda t: t.replace(".5.", ".05."),                          # same number, other spelling
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),           # a changed MAC
    lambda t: t + ".x",
    lambda t: "",
    lambda t: "garbage",
    lambda t: "a.b.c",
    lambda t: f"{GEN}.-5.{t.rsplit('.', 1)[1]}",
    lambda t: f"{GEN}.\u0665.{t.rsplit('.', 1)[1]}",             # a non-ASCII digit
    lambda t: t + "A" * 300,
])
def test_forged_or_malformed_cursors_are_refused(forge: object) -> None:
    token = encode_cursor(KEY, GEN, 7, 5)
    with pytest.raises(CursorReset):
        decode_cursor(KEY, GEN, 7, forge(token))  # type: ignore[operator]


def test_cursor_of_another_namespace_server_or_generation_is_refused() -> None:
    token = encode_cursor(KEY, GEN, 7, 5)
    with pytest.raises(CursorReset):
        decode_cursor(KEY, GEN, 8, token)  # another account's journal
    with pytest.raises(CursorReset):
        decode_cursor(b"other-server-key", GEN, 7, token)
    with pytest.raises(CursorReset) as caught:
        decode_cursor(KEY, "fedcba9876543210", 7, token)  # the server was restored
    assert caught.value.message == OLD_GENERATION
    assert caught.value.status == 410 and caught.value.code == "reset"


def test_positions_outside_the_retained_history_are_refused() -> None:
    # Nothing trimmed yet (oldest retained change is 1): every position up to the head works.
    for seq in range(0, 11):
        check_position(seq, head=10, oldest=1, retention=100)
    # Changes 1..5 trimmed: a client at 5 still gets 6.. in full; one at 4 would miss 5.
    check_position(5, head=10, oldest=6, retention=5)
    with pytest.raises(CursorReset, match="older than the history"):
        check_position(4, head=10, oldest=6, retention=5)
    with pytest.raises(CursorReset, match="ahead"):
        check_position(11, head=10, oldest=1, retention=100)
    # An empty journal: only the start is valid.
    check_position(0, head=0, oldest=None, retention=5)
    assert retained_floor(head=3, oldest=None) == 3


def test_backoff_grows_to_the_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(base=0.5, cap=8.0, rng=random.Random(3))
    delays = [backoff.next_delay() for _ in range(10)]
    ceilings = [min(8.0, 0.5 * 2**i) for i in range(10)]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= 8.0 and delays[-1] >= 4.0
    backoff.reset()
    assert backoff.next_delay() <= 0.5
    # Same seed, same delays: a failing reconnect sequence replays exactly.
    again = Backoff(base=0.5, cap=8.0, rng=random.Random(3))
    assert [again.next_delay() for _ in range(10)] == delays
