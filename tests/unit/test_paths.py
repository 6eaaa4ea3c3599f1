from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidropbox.core.errors import InvalidPath
from minidropbox.core.paths import (
    ancestors,
    is_within,
    join,
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
