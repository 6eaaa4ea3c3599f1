"""Where the CLI keeps its credentials: ``$XDG_CONFIG_HOME/minidropbox/credentials.json``.

The folder is 0700 and the file 0600; a credentials file others can read is refused, because
its refresh token is as good as the password for 30 days.

Profiles let one person use several servers or accounts: ``--profile work`` (or
``MINIDROPBOX_PROFILE=work``) keeps its session in ``credentials-work.json``, and
``config.toml`` in the same folder may name each profile's server and the default profile::

    default_profile = "home"
    [profiles.home]
    server = "http://nas.local:8000"
    [profiles.work]
    server = "https://files.example.com"
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import stat
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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


PROFILE_RE = re.compile(r"^[a-z0-9_-]{1,32}$")
DEFAULT_PROFILE = "default"


class BadClientConfig(MiniDropboxError):
    """The client configuration file or profile name is not valid."""

    exit_code = 2


def client_config() -> dict[str, Any]:
    """``config.toml`` of the config folder, or {} when there is none."""
    path = config_dir() / "config.toml"
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, OSError) as exc:
        raise BadClientConfig(f"{path}: {exc}") from exc


def profile_name() -> str:
    """``MINIDROPBOX_PROFILE`` (set by ``--profile``), else the config's default profile."""
    name = os.environ.get("MINIDROPBOX_PROFILE") or \
        str(client_config().get("default_profile") or DEFAULT_PROFILE)
    if not PROFILE_RE.fullmatch(name):
        raise BadClientConfig(f"Profile names are 1-32 characters of a-z, 0-9, '_' or '-', "
                              f"not {name!r}.")
    return name


def profile_server() -> str | None:
    """The server ``config.toml`` names for the current profile, if any."""
    profiles = client_config().get("profiles", {})
    entry = profiles.get(profile_name(), {}) if isinstance(profiles, dict) else {}
    server = entry.get("server") if isinstance(entry, dict) else None
    return str(server) if server else None


def _profile_file(stem: str, suffix: str) -> Path:
    name = profile_name()
    return config_dir() / (f"{stem}{suffix}" if name == DEFAULT_PROFILE
                           else f"{stem}-{name}{suffix}")


def credentials_path() -> Path:
    return _profile_file("credentials", ".json")


def remember_server(server: str) -> None:
    """Keep the server after ``logout``, so the next ``login`` goes back to it."""
    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    _profile_file("server", ".txt").write_text(server + "\n")


def remembered_server() -> str | None:
    try:
        return _profile_file("server", ".txt").read_text().strip() or None
    except FileNotFoundError:
        return None


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
    fd = os.open(credentials_path().with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def clear_credentials() -> None:
    credentials_path().unlink(missing_ok=True)
