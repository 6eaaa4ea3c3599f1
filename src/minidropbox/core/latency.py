"""Recent latencies per storage node, and how long to wait before hedging a request.

A hedged request (Dean and Barroso, "The Tail at Scale") goes to a second replica when the
first has not answered within about its usual worst case: the recent 95th percentile, bounded
so that a node with no history, or a very fast one, gets a sensible wait. A hung node then
costs one such delay per read, not a timeout.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class LatencyWindow:
    """The last ``size`` latencies (seconds) of one kind of request to one node."""

    size: int = 64
    samples: deque[float] = field(default_factory=deque)

    def add(self, seconds: float) -> None:
        self.samples.append(seconds)
        while len(self.samples) > self.size:
            self.samples.popleft()

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (nearest rank) of the window; None while it is empty."""
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        rank = min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))
        return ordered[rank]


def hedge_delay(window: LatencyWindow, low: float, high: float, scale: float = 1.0,
                unknown: float | None = None, min_samples: int = 8) -> float:
    """How long the first request may run before a second replica is asked too.

    ``scale`` times the window's p95, within ``[low, high]``. Until the window holds
    ``min_samples`` latencies (a guess from a few would hedge too eagerly) it is ``unknown``
    (default ``high``), within the same bounds.
    """
    p95 = window.quantile(0.95) if len(window.samples) >= min_samples else None
    guess = (high if unknown is None else unknown) if p95 is None else p95 * scale
    return min(high, max(low, guess))
