"""``put --exclude`` / ``get --exclude``: gitignore-style patterns (as ``.minidropboxignore``)
matched against each path relative to the folder being transferred; a pattern naming a
folder (``build/``) leaves out everything under it."""

from __future__ import annotations

from collections.abc import Sequence

import pathspec

from minidropbox.core.errors import InvalidInput

MAX_PATTERNS = 1000


class Excludes:
    def __init__(self, patterns: Sequence[str] = ()) -> None:
        if len(patterns) > MAX_PATTERNS:
            raise InvalidInput(f"At most {MAX_PATTERNS} --exclude patterns.")
        self.patterns = list(patterns)
        self.spec = pathspec.GitIgnoreSpec.from_lines(self.patterns)
        self.count = 0  # files left out so far

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def excluded(self, rel: str, is_dir: bool = False) -> bool:
        """True if ``rel`` (``a/b.txt``, relative to the transfer's folder) is left out."""
        rel = rel.strip("/")
        if not self.patterns or not rel:
            return False
        hit = bool(self.spec.match_file(rel + "/" if is_dir else rel))
        if hit and not is_dir:
            self.count += 1
        return hit
