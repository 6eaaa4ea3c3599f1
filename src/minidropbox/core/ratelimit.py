"""Sliding-window counters for throttling, with the clock passed in."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field


@dataclass
class SlidingWindow:
    """Counts events per key over the last ``window`` seconds; at most ``limit`` allowed."""

    limit: int
    window: float = 60.0
    _events: dict[str, deque[float]] = field(default_factory=dict)

    def _prune(self, key: str, now: float) -> deque[float]:
        q = self._events.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            # Keep the map from growing without bound with one-off keys.
            self._events.pop(key, None)
            q = self._events.setdefault(key, deque())
        return q

    def blocked_for(self, key: str, now: float) -> int:
        """Seconds until ``key`` may act again (0 when it may act now)."""
        q = self._prune(key, now)
        if len(q) < self.limit:
            return 0
        return max(1, math.ceil(q[len(q) - self.limit] + self.window - now))

    def hit(self, key: str, now: float) -> None:
        self._prune(key, now).append(now)

    def reset(self, key: str) -> None:
        self._events.pop(key, None)

    def sweep(self, now: float) -> None:
        """Drop keys whose events have all expired."""
        for key in [k for k, q in self._events.items() if not q or q[-1] <= now - self.window]:
            del self._events[key]
