"""Settings for every server process: one object, from environment variables and a TOML file.

Precedence: explicit keyword arguments > ``MINIDROPBOX_*`` environment variables > the TOML
file named by ``MINIDROPBOX_CONFIG`` > defaults. Secrets that are not given are generated once
and kept in ``DATA_DIR/secrets/`` with mode 0600, so restarts keep sessions valid and the
nodes and the API agree on the cluster secret.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

MiB = 1024 * 1024


class Settings(BaseSettings):
    """Configuration of the API service (and the defaults the other processes share)."""

    model_config = SettingsConfigDict(env_prefix="MINIDROPBOX_", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str | None = None
    # PostgreSQL given in parts (containers: the password comes from its own variable), used
    # when database_url is not set and database_host is; any character is allowed in each.
    database_host: str | None = None
    database_port: int = 5432
    database_user: str | None = None
    database_password: str | None = None
    database_name: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000

    # Storage
    nodes: Annotated[list[str], NoDecode] = Field(default_factory=list)
    replicas: int = 2
    node_timeout: float = 5.0
    node_down_after: float = 10.0
    health_interval: float = 2.0
    repair_interval: float = 5.0
    repair_rate: int = 50  # chunk copies per second, at most
    audit_rate: int = 100  # HEAD requests per second checking recorded replicas
    # Hedged requests (service/cluster.py): a chunk read not answered within the node's recent
    # p95 (bounded to [hedge_min, hedge_max] s) is also asked of the next replica; a write
    # not done within 3 x p95 (at most write_hedge_max s) also goes to the next target.
    hedge_min: float = 0.02
    hedge_max: float = 1.0
    write_hedge_max: float = 2.0
    gc_grace_seconds: float = 3600  # an unreferenced chunk younger than this is kept
    gc_interval: float = 3600  # seconds between collections (0: only `admin gc`)
    # Orphan sweep (service/orphans.py): node copies no replica row names, written at least
    # orphan_grace s ago, are deleted; a pass every orphan_interval s (0: only `admin
    # orphans`), listing at most orphan_rate names per second.
    orphan_grace: float = 3600
    orphan_interval: float = 3600
    orphan_rate: float = 2000
    # An S3-compatible bucket in NODES (``s3=s3://bucket/prefix?endpoint=...``): credentials
    # from this AWS-style file, else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; the API
    # re-hashes stored chunks at s3_scrub_rate bytes/s (a node scrubs its own disk).
    s3_credentials_file: Path | None = None
    s3_scrub_rate: int = 4 * MiB

    # Secrets (generated into data_dir/secrets when absent)
    jwt_secret: str | None = None
    cluster_secret: str | None = None

    # Direct transfers (docs/DESIGN.md, "Direct transfers"): clients send and fetch chunk
    # bytes at the nodes with grants the API signs (valid grant_ttl s) and present the
    # nodes' receipts (accepted for receipt_ttl s, well inside orphan_grace). grant_keys:
    # ``id:secret`` pairs, the first signs, all verify (rotation); empty: one key derived
    # from the cluster secret. Every node needs the same list.
    direct_transfers: bool = True
    # Chunks smaller than this go through the API even so: the request to each of R nodes
    # would cost more than the bytes (many small files travel in batches through the API).
    direct_min_bytes: int = 64 * 1024
    grant_ttl: float = 300.0
    receipt_ttl: float = 900.0
    grant_keys: Annotated[list[str], NoDecode] = Field(default_factory=list, repr=False)

    # Sessions
    access_token_ttl: int = 15 * 60
    refresh_token_ttl: int = 30 * 24 * 3600

    # Limits
    max_chunk_bytes: int = 8 * MiB
    max_json_bytes: int = 4 * MiB
    max_batch_commits: int = 1000
    max_page_size: int = 10_000
    quota_bytes: int | None = None
    # "open": anyone may sign up; "invite": only with a code from `minidropbox admin invite`
    # (administrators can still create accounts with `admin users create`).
    signup: Literal["open", "invite"] = "open"
    login_failures_per_user: int = 5
    login_failures_per_address: int = 20
    requests_per_minute: int = 6000
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Slow clients: the request head must arrive within head_timeout seconds, and a body
    # must bring at least 1 KiB per body_window seconds (else 408 and the connection closes).
    head_timeout: float = 10.0
    body_window: float = 30.0
    # At most this many connections wait for their head at once, per client address and in
    # all; one more closes the oldest (api/pending_heads.py).
    pending_heads: int = Field(default=512, ge=1)
    pending_heads_per_client: int = Field(default=64, ge=1)

    # Sharing: wrong link passwords allowed per minute, per link and per client address;
    # links per account; members per shared folder; files in one link's zip download.
    link_password_failures_per_link: int = 10
    link_password_failures_per_address: int = 30
    max_links_per_user: int = 1000
    max_share_members: int = 100
    max_zip_entries: int = 10_000

    # Hardening: every quantity a client controls has a bound (SECURITY.md, "Limits").
    # Accounts: signups (free or taken name) per client address per signup_window seconds;
    # Argon2id hashes computed at once for logins and password changes (each takes 19 MiB:
    # this caps the memory they take); signups hash one at a time, on a queue of their own.
    signups_per_address: int = 20
    signup_window: float = 3600.0
    password_hashes_at_once: int = 2
    # JSON request bodies: keys in any one object; values and keys in the whole body (an upper
    # bound counted before parsing, api/bounded_json.py).
    max_json_keys: int = 1000
    max_json_values: int = 100_000
    # Long-polls (GET /changes/wait) open at once per account.
    longpolls_per_user: int = 20
    # Chunk fetches one download runs at once, and requests the API has open to one storage
    # node at once (more wait their turn: a queue is not the node's fault).
    fetches_per_download: int = 4
    node_requests_at_once: int = 32
    # Trees (service/tree_limits.py): names in a path; entries one request may create, move,
    # delete or undelete; the metadata quota of an account (entries live and trashed, chunk
    # references of all versions); chunk references of one version.
    max_path_depth: int = 64
    max_entries_per_change: int = 10_000
    max_entries_per_account: int = 1_000_000
    max_chunk_refs_per_account: int = 10_000_000
    max_chunks_per_file: int = 100_000
    min_average_chunk: int = 64 * 1024  # bytes per chunk reference of a file, on average

    # Journal
    journal_retention: int = 1_000_000
    journal_trim_interval: float = 60.0  # seconds between trims of journals that grew

    # Change notifications: long-polls and the WebSocket
    longpoll_max_timeout: float = 120.0
    ws_ping_interval: float = 20.0
    ws_auth_timeout: float = 10.0  # for the token sent as the first message
    ws_session_check: float = 60.0  # open sockets re-check their session at least this often
    ws_max_per_user: int = 20  # open notification sockets per account
    # On shutdown, requests still running after this many seconds (long-polls) are cancelled.
    shutdown_grace: int = 5

    # Several API replicas (PostgreSQL): how often the leader checks its lock, and how often
    # the others try to take it (cluster-wide jobs move within a few of these).
    leader_interval: float = 2.0
    # API processes `server api` runs on its port (PostgreSQL only): api/workers.py.
    api_workers: int = Field(default=1, ge=1, le=64)

    # Observability
    metrics_token: str | None = None  # when set, GET /metrics needs it as a bearer token
    metrics_refresh: float = 15.0  # seconds between recounts of under-replicated chunks

    # WebDAV (/dav/): app passwords per account, the largest XML body (PROPFIND, PROPPATCH,
    # LOCK), and the most entries one PROPFIND answers with (Depth: 1 of a big folder).
    app_passwords_per_user: int = 50
    dav_max_xml_bytes: int = 1 * MiB
    dav_max_propfind_entries: int = 100_000

    # Logging
    json_logs: bool = False

    # Written by `minidropbox server cluster` (the supervisor): its children's restarts, shown
    # by the admin views and /metrics. Unset outside that launcher.
    supervisor_state: Path | None = None

    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (IP addresses or
    # networks). Empty: nobody's, so a client cannot pick the address its login failures count
    # against. compose.yaml names its TLS proxy's fixed address here.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Backup (``minidropbox server backup``): how often, and what retention keeps
    backup_every: str = "1h"
    backup_keep_last: int = 7
    backup_keep_daily: int = 30

    @field_validator("nodes", "cors_origins", "trusted_proxies", "grant_keys", mode="before")
    @classmethod
    def _split_csv(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = os.environ.get("MINIDROPBOX_CONFIG")
        if config:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config)))
        return tuple(sources)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        if self.database_host:
            # Imported here: storage nodes load these settings and never touch a database.
            from sqlalchemy.engine import URL

            return URL.create("postgresql+psycopg", username=self.database_user,
                              password=self.database_password, host=self.database_host,
                              port=self.database_port, database=self.database_name
                              ).render_as_string(hide_password=False)
        return f"sqlite:///{(self.data_dir / 'metadata.db').resolve()}"

    def resolve_secrets(self) -> Settings:
        """Fill in missing secrets from (or into) the data dir; returns self."""
        if not self.jwt_secret:
            self.jwt_secret = load_or_create_secret(self.data_dir, "jwt_secret")
        if not self.cluster_secret:
            self.cluster_secret = load_or_create_secret(self.data_dir, "cluster_secret")
        return self


def grant_key_materials(grant_keys: list[str], cluster_secret: str) -> list[tuple[str, str]]:
    """``(key id, secret)`` pairs for grants and receipts, the signing one first: the
    ``id:secret`` entries of ``GRANT_KEYS``, or one key ``c`` from the cluster secret."""
    if not grant_keys:
        return [("c", cluster_secret)]
    pairs = []
    for entry in grant_keys:
        kid, sep, secret = entry.partition(":")
        if not sep or not kid or len(secret) < 16:
            raise ValueError("GRANT_KEYS entries are id:secret, the secret 16 characters or "
                             "more")
        pairs.append((kid, secret))
    return pairs


def load_or_create_secret(data_dir: Path, name: str) -> str:
    """Read ``data_dir/secrets/name``, creating it (0600, in a 0700 folder) on first use."""
    folder = data_dir / "secrets"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / name
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of the cluster won the race
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value
