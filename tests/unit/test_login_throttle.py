"""The login throttle: per-user and per-address budgets of wrong guesses, with time passed in."""

from __future__ import annotations

from minidropbox.core.ratelimit import LoginThrottle


def test_user_budget_then_wait_then_again() -> None:
    throttle = LoginThrottle(per_user=3, per_address=100, window=60)
    for i in range(3):
        assert throttle.blocked_for("alice", f"10.0.0.{i}", now=i) == 0
        throttle.failed("alice", f"10.0.0.{i}", now=i)
    assert throttle.blocked_for("alice", "10.0.0.9", now=3) == 57  # any address
    assert throttle.blocked_for("bob", "10.0.0.9", now=3) == 0  # other users unaffected
    assert throttle.blocked_for("alice", "10.0.0.9", now=61) == 0


def test_address_budget_spans_users_and_success_resets_only_the_user() -> None:
    throttle = LoginThrottle(per_user=100, per_address=2, window=60)
    throttle.failed("alice", "10.0.0.1", now=0)
    throttle.failed("bob", "10.0.0.1", now=0)
    assert throttle.blocked_for("carol", "10.0.0.1", now=1) > 0
    assert throttle.blocked_for("carol", "10.0.0.2", now=1) == 0
    throttle.succeeded("alice")
    assert throttle.blocked_for("alice", "10.0.0.1", now=1) > 0  # the address stays blocked
