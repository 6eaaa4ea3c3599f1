"""Account rules: what usernames and passwords are acceptable."""

from __future__ import annotations

import re

from minidropbox.core.errors import InvalidInput

USERNAME_RE = re.compile(r"^[a-z0-9_.-]{3,32}$")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024


def normalize_username(raw: str) -> str:
    """Lower-case a username and check it: 3-32 characters of ``[a-z0-9_.-]``."""
    name = raw.strip().lower()
    if not USERNAME_RE.fullmatch(name):
        raise InvalidInput(
            "Username must be 3-32 characters of lower-case letters, digits, '_', '.' or '-'."
        )
    return name


def check_password(password: str) -> None:
    """Refuse passwords that are too short (or absurdly long, which would only cost CPU)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"Password must be at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"Password must be at most {MAX_PASSWORD_LENGTH} characters.")
