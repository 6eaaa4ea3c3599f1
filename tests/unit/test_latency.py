"""Hedge delays from recent latencies (core/latency.py)."""

from __future__ import annotations

from minidropbox.core.latency import LatencyWindow, hedge_delay


def test_the_window_keeps_the_newest_samples_and_reads_quantiles() -> None:
    window = LatencyWindow(size=20)
    for ms in range(1, 41):
        window.add(ms / 1000)
    assert len(window.samples) == 20 and min(window.samples) == 0.021
    assert window.quantile(0.95) == 0.039
    assert window.quantile(0.0) == 0.021 and window.quantile(1.0) == 0.040
    assert LatencyWindow().quantile(0.95) is None


def test_the_hedge_waits_about_the_p95_within_bounds() -> None:
    window = LatencyWindow()
    assert hedge_delay(window, 0.02, 1.0) == 1.0  # no history: the upper bound...
    assert hedge_delay(window, 0.02, 1.0, unknown=0.25) == 0.25  # ...or the guess given
    for _ in range(7):
        window.add(0.05)
    assert hedge_delay(window, 0.02, 1.0) == 1.0  # too few samples yet
    window.add(0.05)
    assert hedge_delay(window, 0.02, 1.0) == 0.05
    assert hedge_delay(window, 0.02, 1.0, scale=2) == 0.1
    fast = LatencyWindow()
    for _ in range(10):
        fast.add(0.001)
    assert hedge_delay(fast, 0.02, 1.0) == 0.02  # never below the floor
    slow = LatencyWindow()
    for _ in range(10):
        slow.add(3.0)
    assert hedge_delay(slow, 0.02, 1.0) == 1.0  # never above the ceiling
