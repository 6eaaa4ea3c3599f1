"""How ``ls`` shows names: natural order, control characters made visible, plain rows for
pipes.

``file2`` sorts before ``file10`` and case does not split the list, as people read names. A
name holding a control or invisible formatting character (a newline, an escape, a bidi
override) is printed quoted with the character escaped, as GNU ls does, so one name is one
line and a terminal never interprets it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

_DIGITS = re.compile(r"(\d+)")
_HIDDEN_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key: runs of digits compare as numbers, the rest without case."""
    parts = _DIGITS.split(name.casefold())
    return tuple((0, int(p)) if i % 2 else (1, p) for i, p in enumerate(parts) if p != "")


def shown_name(name: str) -> str:
    """``name`` as is, or quoted with hidden characters escaped (``'a\\nb'``)."""
    if not any(unicodedata.category(c) in _HIDDEN_CATEGORIES for c in name):
        return name
    out = []
    for c in name:
        if c in ("\\", "'"):
            out.append("\\" + c)
        elif unicodedata.category(c) in _HIDDEN_CATEGORIES:
            code = ord(c)
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(c) or
                       (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
                        if code < 0x10000 else f"\\U{code:08x}"))
        else:
            out.append(c)
    return "'" + "".join(out) + "'"


def plain_rows(rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    """Columns padded with two spaces, one line per row, never wrapped: for pipes."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.rjust(widths[i]) if i in right else
                 (cell if i == len(row) - 1 else cell.ljust(widths[i]))
                 for i, cell in enumerate(row)]
        lines.append("  ".join(cells))
    return lines
