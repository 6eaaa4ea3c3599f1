"""The replica audit yields while the API process is busy (service/audit.py)."""

from __future__ import annotations

from typing import Any

import pytest

from minidropbox.service.audit import BUSY_SHARE, NodeAudit, ProcessLoad


class Clocks:
    def __init__(self) -> None:
        self.wall = 100.0
        self.cpu = 5.0


def test_process_load_is_busy_only_above_its_share_of_a_core() -> None:
    c = Clocks()
    load = ProcessLoad(threshold=0.3, window=0.25, wall=lambda: c.wall, cpu=lambda: c.cpu)
    assert not load.busy()
    c.wall += 1.0
    c.cpu += 0.8  # 80% of a core
    assert load.busy()
    c.wall += 0.1
    c.cpu += 0.0
    assert load.busy()  # a window shorter than 0.25 s keeps the last verdict
    c.wall += 1.0
    c.cpu += 0.1  # 10%
    assert not load.busy()


def _audit(rate: float, busy: bool) -> Any:
    return NodeAudit(db=None, cluster=None, audit_rate=rate, interval=1.0,  # type: ignore[arg-type]
                     busy=lambda: busy)


def _spacing(audit: Any, steps: int = 20) -> float:
    """Seconds the pacer books between consecutive HEADs."""
    delays = [audit._pace() for _ in range(steps)]
    return (delays[-1] - delays[1]) / (steps - 2)


def test_the_audit_keeps_its_rate_while_the_process_is_quiet() -> None:
    assert _spacing(_audit(100, busy=False)) == pytest.approx(0.01, abs=0.002)


def test_the_audit_yields_while_the_process_is_busy_but_never_stops() -> None:
    spacing = _spacing(_audit(100, busy=True))
    assert spacing == pytest.approx(1 / (100 * BUSY_SHARE), rel=0.05)
    assert spacing < 1.0  # still auditing: at least a HEAD a second at the default rate
