"""Pacing for background work (repair, audit, scrub): at most ``rate`` units per second."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Pacer:
    """Spreads work evenly: each unit may start ``1/rate`` seconds after the previous one.

    The clock is passed in; ``delay`` says how long to wait before the next unit and books it.
    Idle time is not saved up, so a burst after a quiet spell still runs at ``rate``.
    """

    rate: float
    _next: float = 0.0

    def delay(self, now: float, units: float = 1.0) -> float:
        if self.rate <= 0:
            return 0.0
        start = max(self._next, now)
        self._next = start + units / self.rate
        return start - now
