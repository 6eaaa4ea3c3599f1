"""Settings of a storage node process.

Node-specific values use the ``MINIDROPBOX_NODE_`` prefix (``MINIDROPBOX_NODE_DIR``,
``MINIDROPBOX_NODE_PORT``) so one environment can configure an API and a node side by side;
the values the whole cluster shares keep their cluster-wide names
(``MINIDROPBOX_CLUSTER_SECRET``, ``MINIDROPBOX_JSON_LOGS``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from minidropbox.settings import MiB, load_or_create_secret


class NodeSettings(BaseSettings):
    """Configuration of one storage node."""

    model_config = SettingsConfigDict(env_prefix="MINIDROPBOX_NODE_", extra="ignore",
                                      populate_by_name=True)

    dir: Path = Path("./node-data")
    host: str = "127.0.0.1"
    port: int = 9000
    # repr=False: settings get printed and logged; the secret must never be.
    cluster_secret: str | None = Field(
        default=None, repr=False, validation_alias=AliasChoices("cluster_secret",
                                                    "MINIDROPBOX_CLUSTER_SECRET"))
    json_logs: bool = Field(
        default=False, validation_alias=AliasChoices("json_logs", "MINIDROPBOX_JSON_LOGS"))
    # Chunks are at most 4 MiB and the API refuses bodies over its own limit (8 MiB by
    # default); this is a backstop against a runaway client, with room for that limit to grow.
    max_chunk_bytes: int = 64 * MiB
    # Scrub (node/scrub.py): re-hash every chunk at this many bytes per second (0: never),
    # starting a full pass every scrub_interval seconds.
    scrub_rate: float = 8 * MiB
    scrub_interval: float = 24 * 3600.0
    # A request head (line and headers) must arrive within this many seconds, and at most
    # this many connections wait for theirs at once, per client address and in all: one more
    # closes the oldest (api/pending_heads.py), so slow connections cannot take every
    # descriptor the node has within one deadline.
    head_timeout: float = 10.0
    pending_heads: int = Field(default=256, ge=1)
    pending_heads_per_client: int = Field(default=64, ge=1)
    # On shutdown, requests still running after this many seconds are cancelled (a client
    # that stalled mid-body would otherwise hold the node up until it is killed).
    shutdown_grace: int = Field(default=5, ge=0)
    # The URL clients should use for this node (behind NAT or a proxy); None: the URL the
    # API was given. The node only reports it; the API hands it out with grants.
    public_url: str | None = None
    # Keys of grants and receipts (``id:secret``, the first signs receipts), the same list
    # as the API's; empty: one key derived from the cluster secret.
    grant_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, repr=False,
        validation_alias=AliasChoices("grant_keys", "MINIDROPBOX_GRANT_KEYS"))

    @field_validator("grant_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    def resolve_secrets(self) -> NodeSettings:
        """Load or create the cluster secret in ``dir/secrets`` when none is given; returns self.

        A generated secret only suits a node run alone: a cluster passes the same secret to the
        API and every node.
        """
        if not self.cluster_secret:
            self.cluster_secret = load_or_create_secret(self.dir, "cluster_secret")
        return self
