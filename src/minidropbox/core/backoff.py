"""Reconnect delays: exponential backoff with jitter, so clients that lost the server at the
same moment do not all come back at the same moment."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays of ``base * 2**n`` capped at ``cap``, each scaled by a random factor in [½, 1].

    ``rng`` is passed in so tests replay exactly; ``reset`` after a success.
    """

    base: float = 0.5
    cap: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay(self) -> float:
        """The delay before the next attempt (and count one more failure)."""
        ceiling = min(self.cap, self.base * float(1 << min(self.failures, 32)))
        self.failures += 1
        return ceiling * self.rng.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.failures = 0
