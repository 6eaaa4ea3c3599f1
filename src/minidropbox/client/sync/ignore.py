"""What sync leaves alone: ``.minidropboxignore`` at the sync root (gitignore syntax) plus
built-in rules for its own state (``.minidropbox/`` at any level), temp files, and editor
and OS litter.

The same rules apply to the local tree, the base and the server listing, so adding a rule
stops syncing a path without it looking deleted on either side.
"""

from __future__ import annotations

import functools

import pathspec

from minidropbox.client.localfolder import LocalFolder
from minidropbox.client.localpaths import ASIDE_PREFIX, RESPELL_PREFIX, TMP_PREFIX
from minidropbox.client.sync.state import STATE_DIR

IGNORE_FILE = ".minidropboxignore"
# The state folder is ignored at every level: a sync folder copied or moved into another
# one must never have its state DB uploaded.
BUILTIN = [f"{STATE_DIR}/", "*.swp", "*.swx", "*~", ".DS_Store", "Thumbs.db", ".~lock*",
           f"{TMP_PREFIX}*", f"{ASIDE_PREFIX}*", f"{RESPELL_PREFIX}*"]


MAX_REMEMBERED = 200_000  # answers kept per rule text; forgotten all at once past it


class _Spec:
    """Compiled rules that remember their answers: every round asks again about every name
    on both sides (about a dozen times per file a round), and matching a path against the
    dozen patterns was a tenth of a live sync's CPU. The answer depends only on the rule
    text and the path."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.spec = pathspec.GitIgnoreSpec.from_lines([*BUILTIN, *patterns])
        self.answers: dict[str, bool] = {}

    def match(self, rel: str) -> bool:
        hit = self.answers.get(rel)
        if hit is None:
            hit = bool(self.spec.match_file(rel))
            if len(self.answers) >= MAX_REMEMBERED:
                self.answers = {}
            self.answers[rel] = hit
        return hit


@functools.lru_cache(maxsize=16)
def _compiled(patterns: tuple[str, ...]) -> _Spec:
    """Compiling the rules costs milliseconds and every round loads them: once per text."""
    return _Spec(patterns)


class IgnoreRules:
    """Decides, for a ``/``-rooted relative path, whether sync skips it."""

    def __init__(self, patterns: list[str]) -> None:
        self.spec = _compiled(tuple(patterns))

    @classmethod
    def load(cls, folder: LocalFolder) -> IgnoreRules:
        """The built-in rules plus the root's ``.minidropboxignore``, if it has one."""
        try:
            with folder.open_read(IGNORE_FILE) as fh:
                lines = fh.read().decode("utf-8", errors="replace")
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            lines = ""
        return cls(lines.splitlines())

    def ignored(self, path: str, is_dir: bool = False) -> bool:
        """True if sync skips ``path`` (a rule on a folder covers everything under it)."""
        rel = path.lstrip("/")
        if not rel:
            return False
        return self.spec.match(rel + "/" if is_dir else rel)
