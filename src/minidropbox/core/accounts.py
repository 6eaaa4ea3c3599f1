"""Account rules: what usernames and passwords are acceptable."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Container

from minidropbox.core.errors import InvalidInput

USERNAME_RE = re.compile(r"^[a-z0-9_.-]{3,32}$")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
# "aaaaaaaaaa", "abababab12", ten spaces: long enough, yet guessed at once.
MIN_DISTINCT_CHARACTERS = 5


def normalize_username(raw: str) -> str:
    """Lower-case a username and check it: 3-32 characters of ``[a-z0-9_.-]``."""
    name = raw.strip().lower()
    if not USERNAME_RE.fullmatch(name):
        raise InvalidInput(
            "Username must be 3-32 characters of lower-case letters, digits, '_', '.' or '-'."
        )
    return name


def check_password(password: str, common: Container[str] = frozenset(),
                   username: str = "") -> None:
    """Refuse passwords that are easy to guess, as NIST SP 800-63B (5.1.1.2) asks.

    Too short (or absurdly long, which would only cost CPU to hash); control characters
    (a NUL or an escape never comes from a keyboard); fewer than
    ``MIN_DISTINCT_CHARACTERS`` different characters; the username inside it; or, ignoring
    case and surrounding spaces, one of ``common`` (a list of passwords seen in breaches,
    lower-case).
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"Password must be at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"Password must be at most {MAX_PASSWORD_LENGTH} characters.")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in password):
        raise InvalidInput("Password must not contain control characters.")
    if len(set(password)) < MIN_DISTINCT_CHARACTERS:
        raise InvalidInput(f"Password must use at least {MIN_DISTINCT_CHARACTERS} different "
                           "characters.")
    folded = password.strip().lower()
    if username and username.lower() in folded:
        raise InvalidInput("Password must not contain the username.")
    if folded in common:
        raise InvalidInput("This password is one of the most common ones; choose another.")
