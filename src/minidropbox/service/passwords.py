"""The list of common passwords refused at signup and password change (NIST SP 800-63B).

The list ships with the package (``wordlists/common-passwords.txt.gz``; its origin and licence are
in ``wordlists/common-passwords.LICENSE.txt``) and is read once per process, on first use.
"""

from __future__ import annotations

import functools
import gzip
from importlib import resources


@functools.cache
def common_passwords() -> frozenset[str]:
    """About 20,000 passwords from breach corpora, lower-case."""
    raw = resources.files("minidropbox.service").joinpath("wordlists/common-passwords.txt.gz")
    with gzip.open(raw.open("rb"), "rt", encoding="utf-8") as fh:
        return frozenset(line.strip() for line in fh if line.strip())
