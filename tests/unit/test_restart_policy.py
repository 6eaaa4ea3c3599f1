"""The supervisor's restart rule (core/restart.py): backoff, reset, crash-loop limit."""

from __future__ import annotations

from minidropbox.core.restart import RestartPolicy

POLICY = RestartPolicy(base=0.5, cap=4.0, quick=5.0, limit=4)


def test_a_process_that_ran_fine_comes_back_after_the_base_delay() -> None:
    assert POLICY.after_exit(streak=0, ran=3600, was_ready=True) == (0, 0.5)
    # A long run forgives the quick exits before it.
    assert POLICY.after_exit(streak=3, ran=60, was_ready=True) == (0, 0.5)


def test_quick_exits_back_off_exponentially_up_to_the_cap_then_give_up() -> None:
    streak, delays = 0, []
    for _ in range(3):
        streak, delay = POLICY.after_exit(streak, ran=0.3, was_ready=False)
        delays.append(delay)
    assert delays == [1.0, 2.0, 4.0]
    assert POLICY.after_exit(streak, ran=0.3, was_ready=False) == (4, None)


def test_dying_young_or_never_ready_both_count_towards_the_crash_loop() -> None:
    assert POLICY.after_exit(0, ran=1.0, was_ready=True) == (1, 1.0)  # ready, then died at once
    assert POLICY.after_exit(0, ran=60.0, was_ready=False) == (1, 1.0)  # never answered
    capped = RestartPolicy(base=0.5, cap=4.0, quick=5.0, limit=100)
    assert capped.after_exit(50, ran=0.1, was_ready=False) == (51, 4.0)
