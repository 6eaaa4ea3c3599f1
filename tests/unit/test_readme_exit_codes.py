"""README.md's exit-code table is the one generated from the error classes."""

from __future__ import annotations

from pathlib import Path

from minidropbox.cli import exit_codes
from minidropbox.core.errors import MiniDropboxError

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_table_matches_the_error_classes() -> None:
    text = README.read_text()
    assert exit_codes.START in text and exit_codes.END in text
    start = text.index(exit_codes.START)
    current = text[start : text.index(exit_codes.END) + len(exit_codes.END)]
    assert current == exit_codes.table(), (
        "README.md's exit codes disagree with the error classes; run "
        "`python -m minidropbox.cli.exit_codes --write README.md`")


def test_a_new_error_class_changes_the_table() -> None:
    before = exit_codes.table()

    class BrandNewFailure(MiniDropboxError):
        """Something new went wrong."""

        exit_code = 42

    BrandNewFailure.__module__ = "minidropbox.cli.files"  # as if defined in the CLI
    try:
        after = exit_codes.table()
    finally:
        del BrandNewFailure
        import gc

        gc.collect()
    assert after != before
    assert "| 42 | Something new went wrong. | `BrandNewFailure` |" in after


def test_every_exit_code_a_class_declares_is_listed() -> None:
    table = exit_codes.table()
    for cls in exit_codes.error_classes():
        if not getattr(cls, "exit_code_varies", False):
            assert f"| {cls.exit_code} |" in table and f"`{cls.__name__}`" in table
