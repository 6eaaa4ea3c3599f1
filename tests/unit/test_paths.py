from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidropbox.core.errors import InvalidPath
from minidropbox.core.paths import (
    _REFUSED,
    INVISIBLE,
    REFUSED_CATEGORIES,
    ancestors,
    is_within,
    join,
    lookup_path,
    name_of,
    normalize_path,
    parent_of,
    path_key,
    rebase,
)


@pytest.mark.parametrize("raw,expected", [
    ("", "/"), ("/", "/"), ("a", "/a"), ("/a/b/", "/a/b"),
    ("/Docs/Ünïcode.txt", "/Docs/Ünïcode.txt"),
])
def test_normalize(raw: str, expected: str) -> None:
    assert normalize_path(raw) == expected


@pytest.mark.parametrize("raw", [
    "/a/../b", "/a/./b", "/a//b", "..", "/a\\b", "C:\\x", "c:/x", "/a\x00b", "/a\nb", "/a\x7fb",
    "/" + "x" * 256, "/a" * 2100,
])
def test_bad_paths(raw: str) -> None:
    with pytest.raises(InvalidPath):
        normalize_path(raw)


def test_nfc_and_case() -> None:
    nfd = unicodedata.normalize("NFD", "/Café")
    assert normalize_path(nfd) == unicodedata.normalize("NFC", "/Café")
    assert path_key("/A.txt") == path_key("/a.TXT")


def test_helpers() -> None:
    assert parent_of("/a/b/c") == "/a/b" and parent_of("/a") == "/"
    assert name_of("/a/b") == "b"
    assert join("/", "x") == "/x" and join("/a", "x") == "/a/x"
    assert ancestors("/a/b/c") == ["/a", "/a/b"]
    assert is_within("/A/b", "/a") and not is_within("/ab", "/a")
    assert rebase("/a/b/c", "/a/b", "/z") == "/z/c"


@given(st.text(max_size=60))
def test_normalize_is_idempotent(raw: str) -> None:
    try:
        once = normalize_path(raw)
    except InvalidPath:
        return
    assert normalize_path(once) == once
    assert ".." not in once.split("/")


def test_refused_characters_are_exactly_the_refused_categories_and_invisibles() -> None:
    """``check_characters`` searches one character class; it must refuse exactly what asking
    each character's Unicode category would, for every code point."""
    for cp in range(0x110000):
        c = chr(cp)
        refused = c in INVISIBLE or unicodedata.category(c) in REFUSED_CATEGORIES
        assert (_REFUSED.search(c) is not None) == refused, f"U+{cp:04X}"


@pytest.mark.parametrize("raw,ok", [
    ("/a/.hidden", True), ("/a/b.c/d", True), ("/" + "x" * 300, False),
    ("/a/" + "y" * 255 + "/b", True), ("/" + "é" * 127, True), ("/" + "é" * 128, False),
    ("//", False), ("/a/./b", False), ("/a/..", False), ("/a//b", False)])
def test_the_quick_path_check_agrees_with_the_full_one(raw: str, ok: bool) -> None:
    """Short paths with no ``//`` or ``/.`` skip the per-segment look; the rest are looked at."""
    if ok:
        assert lookup_path(raw) == unicodedata.normalize("NFC", raw)
    else:
        with pytest.raises(InvalidPath):
            lookup_path(raw)
