"""The login throttle: per-user and per-address budgets of wrong guesses, counted in the
metadata database so every API replica shares them, with time passed in."""

from __future__ import annotations

from sqlalchemy import func, select

from minidropbox.metadata.db import Database
from minidropbox.metadata.tables import auth_failures
from minidropbox.service.login_throttle import SharedLoginThrottle


def test_user_budget_then_wait_then_again(db: Database) -> None:
    throttle = SharedLoginThrottle(db, per_user=3, per_address=100, window=60)
    for i in range(3):
        assert throttle.blocked_for("alice", f"10.0.0.{i}", now=i) == 0
        throttle.failed("alice", f"10.0.0.{i}", now=i)
    assert throttle.blocked_for("alice", "10.0.0.9", now=3) == 57  # any address
    assert throttle.blocked_for("bob", "10.0.0.9", now=3) == 0  # other users unaffected
    assert throttle.blocked_for("alice", "10.0.0.9", now=59.5) == 1
    assert throttle.blocked_for("alice", "10.0.0.9", now=60) == 0  # the oldest has left


def test_address_budget_spans_users_and_success_resets_only_the_user(db: Database) -> None:
    throttle = SharedLoginThrottle(db, per_user=100, per_address=2, window=60)
    throttle.failed("alice", "10.0.0.1", now=0)
    throttle.failed("bob", "10.0.0.1", now=0)
    assert throttle.blocked_for("carol", "10.0.0.1", now=1) > 0
    assert throttle.blocked_for("carol", "10.0.0.2", now=1) == 0
    throttle.succeeded("alice")
    assert throttle.blocked_for("alice", "10.0.0.1", now=1) > 0  # the address stays blocked
    assert throttle.blocked_for("alice", "10.0.0.2", now=1) == 0


def test_replicas_share_one_budget(db: Database) -> None:
    """Two API processes over one database: guesses sent to each count together."""
    replicas = [SharedLoginThrottle(db, per_user=4, per_address=100, window=60)
                for _ in range(2)]
    for i in range(4):
        replicas[i % 2].failed("alice", f"10.0.1.{i}", now=10 + i)
    assert all(r.blocked_for("alice", "10.0.9.9", now=14) == 56 for r in replicas)
    replicas[0].succeeded("alice")
    assert replicas[1].blocked_for("alice", "10.0.9.9", now=14) == 0


def test_the_table_keeps_only_what_a_window_can_count(db: Database) -> None:
    throttle = SharedLoginThrottle(db, per_user=3, per_address=3, window=60)
    for i in range(50):
        throttle.failed(f"user{i}", f"10.0.2.{i}", now=i)
    with db.read() as conn:
        times = conn.execute(select(auth_failures.c.at)).scalars().all()
        assert min(times) > 49 - 60 and len(times) == 100
    throttle.failed("late", "10.0.3.1", now=200)
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(auth_failures)).scalar() == 2
