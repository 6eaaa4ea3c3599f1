"""HTTP Range header parsing (single ranges only), as a pure function."""

from __future__ import annotations

from minidropbox.core.errors import RangeNotSatisfiable


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (start, end) a ``Range`` header asks for, or None for the whole body.

    Multi-range and malformed headers are ignored (the whole body is served, as RFC 9110
    allows); a syntactically valid range outside the body raises ``RangeNotSatisfiable``.
    """
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    spec = header[len("bytes="):].strip()
    first, sep, last = spec.partition("-")
    if not sep:
        return None
    try:
        if first == "":
            if not last.isdigit():
                return None
            suffix = int(last)
            if suffix == 0:
                raise RangeNotSatisfiable(f"The file has {size} bytes.", size=size)
            return max(0, size - suffix), size - 1
        if not first.isdigit() or (last and not last.isdigit()):
            return None
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size:
        raise RangeNotSatisfiable(f"The file has {size} bytes.", size=size)
    if end < start:
        return None
    return start, min(end, size - 1)
