"""Path rules: what a valid path is, and how paths compare.

Paths are ``/``-separated and absolute (``/Docs/a.txt``); the root is ``/``. They are stored
NFC-normalised with case preserved, and compared by ``path_key`` (NFC + casefold), so ``A.txt``
and ``a.txt`` cannot both exist, as on macOS and Windows clients.
"""

from __future__ import annotations

import re
import unicodedata

from minidropbox.core.errors import InvalidPath

MAX_PATH_BYTES = 4096
MAX_SEGMENT_BYTES = 255
# Characters that change how a name displays without being seen: bidi embeddings, overrides
# and isolates (U+202E makes "gpj.exe" read "exe.jpg"), zero-width space, word joiner and
# invisible operators, the byte-order mark, Mongolian vowel separator, interlinear
# annotation marks. Zero-width (non-)joiners stay allowed: scripts and emoji need them.
INVISIBLE = frozenset(
    "\u061c\u180e\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff"
    "\ufff9\ufffa\ufffb")
# Unicode categories refused: controls (C0, DEL and C1, such as U+009B, the terminal's CSI),
# line and paragraph separators (U+2028, U+2029), and lone surrogates (not encodable).
REFUSED_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cs"})


_NEVER_STORABLE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")  # C0, DEL, lone surrogates


# Every code point of the refused categories (Unicode keeps them fixed: Cc is C0, DEL and C1,
# Zl and Zp one each, Cs the surrogates) and the invisible ones, as one character class: a
# search runs in C, where a loop asking each character's category took a sync a few
# microseconds per name, every name, every round (tests/unit/test_paths.py checks the class
# against unicodedata for every code point).
_REFUSED = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff"
                      + "".join(sorted(INVISIBLE)) + "]")


def check_characters(name: str) -> None:
    """Raise ``InvalidPath`` if ``name`` holds a control, separator or invisible character."""
    bad = _REFUSED.search(name)
    if bad is None:
        return
    c = bad.group()
    if c in INVISIBLE:
        raise InvalidPath(f"Path contains an invisible or bidi control character "
                          f"(U+{ord(c):04X}).")
    raise InvalidPath(f"Path contains a control character (U+{ord(c):04X}).")


def normalize_path(raw: str) -> str:
    """Return the canonical form of a user-supplied path, or raise ``InvalidPath``.

    A missing leading slash is added and a single trailing slash dropped; everything else
    that is ambiguous or dangerous (``..``, ``.``, empty segments, backslashes, NUL and
    control characters, invisible and bidi control characters, Windows drive letters,
    over-long names) is refused rather than guessed. This is the rule for names being made.
    """
    if isinstance(raw, str) and len(raw) <= MAX_PATH_BYTES:  # before work that grows with it
        check_characters(raw)
    return lookup_path(raw)


def lookup_path(raw: str) -> str:
    """Like ``normalize_path``, for a path that only names something that already exists.

    Names stored before the character rules of ``check_characters`` (C1 controls, line
    separators, bidi controls and invisible characters were once accepted) must stay reachable,
    or their owners could neither download, rename nor delete them. So a lookup refuses only
    what was never storable (C0 controls, DEL, lone surrogates) and the structural dangers;
    every route that creates a name checks the new name with ``check_characters``.
    """
    if not isinstance(raw, str):
        raise InvalidPath("Path must be a string.")
    if len(raw) > MAX_PATH_BYTES:  # before any work that grows with the length
        raise InvalidPath(f"Path is longer than {MAX_PATH_BYTES} bytes.")
    bad = _NEVER_STORABLE.search(raw)
    if bad:
        raise InvalidPath(f"Path contains a control character (U+{ord(bad.group()):04X}).")
    path = unicodedata.normalize("NFC", raw)
    if path in ("", "/"):
        return "/"
    if "\\" in path:
        raise InvalidPath("Path contains a backslash; use '/' to separate folders.")
    if len(path) >= 2 and path[1] == ":" and path[0].isalpha():
        raise InvalidPath("Windows drive paths are not allowed; use '/folder/name'.")
    if not path.startswith("/"):
        path = "/" + path
    if path.endswith("/"):
        path = path[:-1]
    size = len(path.encode("utf-8"))
    if size > MAX_PATH_BYTES:
        raise InvalidPath(f"Path is longer than {MAX_PATH_BYTES} bytes.")
    if size <= MAX_SEGMENT_BYTES and "//" not in path and "/." not in path \
            and not path.endswith("/"):
        return path  # no segment can be empty, "." or "..", or too long: nothing to look at
    for segment in path[1:].split("/"):
        if segment == "":
            raise InvalidPath("Path contains an empty segment ('//').")
        if segment in (".", ".."):
            raise InvalidPath("Path segments '.' and '..' are not allowed.")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise InvalidPath(f"A name in the path is longer than {MAX_SEGMENT_BYTES} bytes.")
    return path


def check_renamed(old_path: str, new_path: str) -> None:
    """Raise ``InvalidPath`` if a move gives an entry a new name that breaks the character rules
    (keeping a name stored before those rules, while moving it elsewhere, is allowed)."""
    if name_of(new_path) != name_of(old_path):
        check_characters(name_of(new_path))


def depth(path: str) -> int:
    """How many names a normalised path has (the root: 0, ``/a/b``: 2)."""
    return 0 if path == "/" else path.count("/")


def path_key(path: str) -> str:
    """The comparison key of a normalised path: equal keys mean the same entry."""
    return unicodedata.normalize("NFC", path).casefold()


def parent_of(path: str) -> str:
    """The parent folder of a normalised path (the root is its own parent)."""
    if path == "/":
        return "/"
    head = path.rsplit("/", 1)[0]
    return head or "/"


def name_of(path: str) -> str:
    """The last segment of a normalised path ("" for the root)."""
    return path.rsplit("/", 1)[-1]


def join(folder: str, name: str) -> str:
    """Join a normalised folder path and a name."""
    return ("" if folder == "/" else folder) + "/" + name


def ancestors(path: str) -> list[str]:
    """Every folder above ``path``, outermost first, excluding the root."""
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def is_within(path: str, folder: str) -> bool:
    """True if ``path`` is ``folder`` itself or lies under it (case-insensitively)."""
    if folder == "/":
        return True
    key, fkey = path_key(path), path_key(folder)
    return key == fkey or key.startswith(fkey + "/")


def rebase(path: str, old_prefix: str, new_prefix: str) -> str:
    """Replace the folder prefix ``old_prefix`` of ``path`` with ``new_prefix``."""
    if path_key(path) == path_key(old_prefix):
        return new_prefix
    tail = path[len(old_prefix) :] if old_prefix != "/" else path
    return ("" if new_prefix == "/" else new_prefix) + tail
