"""Node health as a pure state machine, with the clock passed in.

A node is ``up`` while probes and requests succeed, ``suspect`` from its first failure, and
``down`` once it has not succeeded for ``down_after`` seconds. Writes use only ``up`` nodes;
reads try every node that holds a replica, ``up`` ones first.
"""

from __future__ import annotations

from dataclasses import dataclass

UP, SUSPECT, DOWN = "up", "suspect", "down"


@dataclass
class NodeHealth:
    name: str
    state: str = UP
    last_ok: float = 0.0
    failures: int = 0

    def record_success(self, now: float) -> None:
        self.state = UP
        self.last_ok = now
        self.failures = 0

    def record_failure(self, now: float, down_after: float) -> None:
        self.failures += 1
        self.state = DOWN if now - self.last_ok >= down_after else SUSPECT

    def tick(self, now: float, down_after: float) -> None:
        """Advance ``suspect`` to ``down`` when the grace period has passed."""
        if self.state == SUSPECT and now - self.last_ok >= down_after:
            self.state = DOWN


def parse_node_spec(spec: str, index: int) -> tuple[str, str]:
    """``name=url`` or a bare URL (named by the URL itself) → (name, url)."""
    if "=" in spec and not spec.split("=", 1)[0].startswith("http"):
        name, url = spec.split("=", 1)
        return name.strip(), url.strip().rstrip("/")
    url = spec.strip().rstrip("/")
    return url, url
