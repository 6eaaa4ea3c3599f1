"""Sizes for people: binary units, as ``du -h`` and rclone print them."""

from __future__ import annotations


def human_bytes(n: int) -> str:
    """``512 B``, ``1.5 KiB``, ``3.0 GiB``: one decimal above bytes."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"
