"""How ``ls`` orders and shows names."""

from __future__ import annotations

from minidropbox.cli.listing import natural_key, plain_rows, shown_name


def test_natural_order() -> None:
    names = ["file10.txt", "File2.txt", "file1.txt", "a", "B", "file2b.txt", "10", "9"]
    assert sorted(names, key=natural_key) == [
        "9", "10", "a", "B", "file1.txt", "File2.txt", "file2b.txt", "file10.txt"]


def test_control_characters_are_quoted_and_escaped() -> None:
    assert shown_name("plain name.txt") == "plain name.txt"
    assert shown_name("naïve café.txt") == "naïve café.txt"  # letters are not hidden
    assert shown_name("two\nlines") == "'two\\nlines'"
    assert shown_name("bell\x07") == "'bell\\x07'"
    assert shown_name("\x1b[31mred") == "'\\x1b[31mred'"
    assert shown_name("exe\u202egpj.txt") == "'exe\\u202egpj.txt'"  # right-to-left override
    assert shown_name("it's\n") == "'it\\'s\\n'"
    assert "\n" not in shown_name("a\u2028b")


def test_plain_rows_never_wrap() -> None:
    long = "x" * 300
    rows = [("5 B", "2024-01-01 10:00", "1", long), ("1.0 MiB", "-", "12", "b/")]
    lines = plain_rows(rows, right=(0, 2))
    assert len(lines) == 2 and lines[0].endswith(long)
    assert lines[0].startswith("    5 B") and lines[1].startswith("1.0 MiB")
