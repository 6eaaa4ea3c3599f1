"""Names from the server never lead a download outside its target folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from minidropbox.client.localpaths import (
    UnsafeName,
    check_name,
    check_names,
    ensure_inside,
    relative_remote,
    safe_join,
)


@pytest.mark.parametrize("name", ["a.txt", "résumé.pdf", ".hidden", "a b", "..."])
def test_ordinary_names_pass(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\\b", "..\\x",
                                  "nul\x00", "line\nbreak", "del\x7f"])
def test_dangerous_names_are_refused(name: str) -> None:
    with pytest.raises(UnsafeName):
        check_name(name)


@pytest.mark.skipif(os.name != "nt", reason="drive letters only mean something on Windows")
def test_drive_letters_are_refused_on_windows() -> None:
    for name in ["C:evil", "c:", "a:b"]:
        with pytest.raises(UnsafeName):
            check_name(name)


def test_safe_join_keeps_everything_under_root(tmp_path: Path) -> None:
    assert safe_join(tmp_path, "a/b/c.txt") == tmp_path / "a" / "b" / "c.txt"
    for relative in ["../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", "a\\..\\..\\x", ""]:
        with pytest.raises(UnsafeName):
            safe_join(tmp_path, relative)


def test_relative_remote() -> None:
    assert relative_remote("/Docs/a/b.txt", "/Docs") == "a/b.txt"
    assert relative_remote("/docs/A.txt", "/Docs") == "A.txt"  # same folder, other case
    assert relative_remote("/Docs", "/Docs") == ""
    assert relative_remote("/x/y", "/") == "x/y"
    for outside in ["/Other/a.txt", "/Docsx/a.txt", "/"]:
        with pytest.raises(UnsafeName):
            relative_remote(outside, "/Docs")


def _segment_by_segment(relative: str) -> str | None:
    try:
        for part in relative.split("/"):
            check_name(part)
    except UnsafeName as exc:
        return exc.message
    return None


# Separators, dots, backslashes, drive colons and refused characters (controls, C1, bidi
# overrides, zero-width space) among ordinary and combining ones.
_TRICKY = st.lists(st.sampled_from(["a", "B", "é", "e\u0301", ".", "..", "/", "\\", ":", " ",
                                    "\x01", "\x7f", "\x85", "\u202e", "\u200b", "\u200d",
                                    "\u2028", "~"]), max_size=8).map("".join)


_SEGMENT = st.sampled_from(["a", "é", "", ".", "..", ".x", "x.", "..."]) | _TRICKY


@settings(max_examples=500)
@given(st.lists(_SEGMENT, max_size=4).map("/".join) | _TRICKY)
@example("a/..")
@example("a/./b")
def test_check_names_is_check_name_of_every_segment(relative: str) -> None:
    """A server listing checks each path whole when it can; it must refuse exactly what
    checking segment by segment refuses, with the same message."""
    try:
        check_names(relative)
        got = None
    except UnsafeName as exc:
        got = exc.message
    assert got == _segment_by_segment(relative)


@given(st.text(st.sampled_from(["a", "/", "A", "."]), max_size=6))
def test_relative_remote_of_the_root_is_the_path_without_its_slash(path: str) -> None:
    if path.startswith("/"):
        assert relative_remote(path, "/") == "/".join(path.split("/")[1:])
    else:
        with pytest.raises(UnsafeName):
            relative_remote(path, "/")


def test_ensure_inside_sees_through_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "link")
    ensure_inside(root, root)
    ensure_inside(root, root / "sub" / "new" / "deeper")
    with pytest.raises(UnsafeName):
        ensure_inside(root, root / "link")
    with pytest.raises(UnsafeName):
        ensure_inside(root, root / "link" / "file.txt")
    with pytest.raises(UnsafeName):
        ensure_inside(root, tmp_path / "rootx")
