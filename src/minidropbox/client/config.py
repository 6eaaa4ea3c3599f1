"""Where the CLI keeps its credentials: ``$XDG_CONFIG_HOME/minidropbox/credentials.json``.

The folder is 0700 and the file 0600; a credentials file others can read is refused, because
its refresh token is as good as the password for 30 days.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from minidropbox.core.errors import MiniDropboxError


class InsecureCredentials(MiniDropboxError):
    """The credentials file is readable by other users."""

    exit_code = 3


@dataclass
class Credentials:
    server: str
    username: str
    access_token: str
    refresh_token: str
    expires_at: float


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "minidropbox"


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


def load_credentials() -> Credentials | None:
    path = credentials_path()
    if not path.exists():
        return None
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InsecureCredentials(
            f"{path} is readable by other users; run `chmod 600 {path}` or log in again."
        )
    try:
        return Credentials(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        return None


def save_credentials(creds: Credentials) -> None:
    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    path = credentials_path()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(creds), fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


@contextmanager
def credentials_lock(enabled: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on the credentials (across processes) while refreshing them."""
    if not enabled:
        yield
        return
    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(folder / "credentials.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def clear_credentials() -> None:
    credentials_path().unlink(missing_ok=True)
