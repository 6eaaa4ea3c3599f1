"""Every metadata table, in one place (SQLAlchemy Core).

Entries and the journal hang off a *namespace*, not a user, so a shared folder can later be
mounted into several users' trees without a rewrite. Timestamps are UTC epoch seconds (float)
so SQLite and PostgreSQL compare them the same way.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(32), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("is_admin", Boolean, nullable=False, server_default=text("false")),
    Column("quota_bytes", BigInteger, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("password_changed_at", Float, nullable=False),
    # Set by an administrator: no login, no session, no app password works until cleared.
    Column("disabled_at", Float, nullable=True),
)

# Sign-up codes made by administrators, for servers where open sign-up is off
# (``SIGNUP=invite``). Only the SHA-256 of a code is kept; each works once, until it expires.
invites = Table(
    "invites",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("created_by", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
    Column("used_by", String(32), nullable=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("refresh_hash", String(64), nullable=False),
    Column("device", String(128), nullable=False, server_default=""),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Index("ix_sessions_user", "user_id"),
)

namespaces = Table(
    "namespaces",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    # The newest journal cursor; bumped with UPDATE ... RETURNING so concurrent writers on
    # PostgreSQL serialise on this row and cursors stay gap-free and monotonic.
    Column("journal_head", BigInteger, nullable=False, server_default=text("0")),
    Column("used_bytes", BigInteger, nullable=False, server_default=text("0")),
    Column("created_at", Float, nullable=False),
    # The metadata quota's counters (metadata/usage.py): entries, live and in the trash, and
    # the chunk references of all versions.
    Column("entry_count", BigInteger, nullable=False, server_default=text("0")),
    Column("chunk_refs", BigInteger, nullable=False, server_default=text("0")),
    Index("ix_namespaces_owner", "owner_id"),
)

entries = Table(
    "entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("namespace_id", Integer, ForeignKey("namespaces.id", ondelete="CASCADE"),
           nullable=False),
    Column("path", Text, nullable=False),
    Column("path_key", Text, nullable=False),
    Column("parent_key", Text, nullable=False),
    Column("kind", String(8), nullable=False),  # "file" | "folder"
    Column("version", Integer, nullable=True),  # current version number (files)
    Column("size", BigInteger, nullable=True),
    Column("content_hash", String(64), nullable=True),
    Column("modified", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("deleted_at", Float, nullable=True),
    # Set on a mount point: a folder entry standing for a shared folder's namespace, mounted
    # here in this member's tree (metadata/shares.py).
    Column("mount_namespace_id", Integer, nullable=True),
    Index("ix_entries_live_key", "namespace_id", "path_key", unique=True,
          sqlite_where=text("deleted_at IS NULL"), postgresql_where=text("deleted_at IS NULL")),
    Index("ix_entries_parent", "namespace_id", "parent_key"),
    Index("ix_entries_deleted", "namespace_id", "deleted_at"),
    Index("ix_entries_mount", "mount_namespace_id"),
)

versions = Table(
    "versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entry_id", Integer, ForeignKey("entries.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("mtime", Float, nullable=False),
    Column("device", String(128), nullable=False, server_default=""),
    Column("created_at", Float, nullable=False),
    Column("author_id", Integer, nullable=True),  # who made it (a shared folder's members)
    Index("ix_versions_entry_number", "entry_id", "number", unique=True),
)

version_chunks = Table(
    "version_chunks",
    metadata,
    Column("version_id", Integer, ForeignKey("versions.id", ondelete="CASCADE"), nullable=False),
    Column("idx", Integer, nullable=False),
    Column("chunk_hash", String(64), ForeignKey("chunks.hash"), nullable=False),
    PrimaryKeyConstraint("version_id", "idx"),
    Index("ix_version_chunks_hash", "chunk_hash"),
)

chunks = Table(
    "chunks",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
)

nodes = Table(
    "nodes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("url", String(512), nullable=False),
    Column("state", String(16), nullable=False, server_default="up"),  # up | suspect | down
    Column("draining", Boolean, nullable=False, server_default=text("false")),
    Column("last_seen", Float, nullable=True),
    Column("free_bytes", BigInteger, nullable=True),
    Column("used_bytes", BigInteger, nullable=True),
    Column("chunk_count", BigInteger, nullable=True),
)

replicas = Table(
    "replicas",
    metadata,
    Column("chunk_hash", String(64), ForeignKey("chunks.hash", ondelete="CASCADE"),
           nullable=False),
    Column("node_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
    Column("state", String(16), nullable=False, server_default="ok"),  # ok | bad
    Column("created_at", Float, nullable=False),
    PrimaryKeyConstraint("chunk_hash", "node_id"),
    Index("ix_replicas_node", "node_id"),
)

user_chunks = Table(
    "user_chunks",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("chunk_hash", String(64), ForeignKey("chunks.hash", ondelete="CASCADE"),
           nullable=False),
    Column("created_at", Float, nullable=False),
    PrimaryKeyConstraint("user_id", "chunk_hash"),
    Index("ix_user_chunks_hash", "chunk_hash"),
)

journal = Table(
    "journal",
    metadata,
    Column("namespace_id", Integer, ForeignKey("namespaces.id", ondelete="CASCADE"),
           nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("op", String(16), nullable=False),
    Column("path", Text, nullable=False),
    Column("from_path", Text, nullable=True),
    Column("kind", String(8), nullable=False),
    Column("version", Integer, nullable=True),
    Column("size", BigInteger, nullable=True),
    Column("content_hash", String(64), nullable=True),
    Column("created_at", Float, nullable=False),
    PrimaryKeyConstraint("namespace_id", "seq"),
)

repair_queue = Table(
    "repair_queue",
    metadata,
    Column("chunk_hash", String(64), primary_key=True),
    Column("priority", Integer, nullable=False, server_default=text("0")),
    Column("reason", String(64), nullable=False, server_default=""),
    Column("queued_at", Float, nullable=False),
)

server_info = Table(
    "server_info",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# -- sharing (metadata/shares.py) -------------------------------------------------------------

share_links = Table(
    "share_links",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # Only the SHA-256 of the token is kept: a copy of the database opens no link.
    Column("token_hash", String(64), nullable=False, unique=True),
    # What the owner names the link by (revoke); random, so it says nothing about others'.
    Column("public_id", String(16), nullable=False, unique=True),
    Column("owner_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("namespace_id", Integer, ForeignKey("namespaces.id", ondelete="CASCADE"),
           nullable=False),
    # The entry is found by path on every use, so a link shows it as it is now, answers 404
    # while it is moved or deleted, and works again once it is back.
    Column("path", Text, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("mode", String(8), nullable=False),  # "view" | "upload"
    Column("password_hash", String(255), nullable=True),
    Column("show_owner", Boolean, nullable=False, server_default=text("false")),
    Column("expires_at", Float, nullable=True),
    Column("max_downloads", Integer, nullable=True),
    Column("downloads", Integer, nullable=False, server_default=text("0")),
    Column("last_used_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Index("ix_share_links_owner", "owner_id"),
    Index("ix_share_links_namespace", "namespace_id"),
)

shared_folders = Table(
    "shared_folders",
    metadata,
    Column("namespace_id", Integer, ForeignKey("namespaces.id", ondelete="CASCADE"),
           primary_key=True),
    Column("owner_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

share_members = Table(
    "share_members",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("namespace_id", Integer,
           ForeignKey("shared_folders.namespace_id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(8), nullable=False),  # "owner" | "editor" | "viewer"
    Column("state", String(8), nullable=False),  # "invited" | "active"
    Column("invited_by", Integer, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("accepted_at", Float, nullable=True),
    Index("ix_share_members_folder_user", "namespace_id", "user_id", unique=True),
    Index("ix_share_members_user", "user_id"),
)

# Per-device passwords for WebDAV (HTTP Basic). Only a SHA-256 of each is kept: they are long
# random strings, so a fast hash is enough (as for refresh tokens), and every request can
# check its row, which makes revocation immediate.
app_passwords = Table(
    "app_passwords",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float, nullable=True),
    Index("ix_app_passwords_user_name", "user_id", "name", unique=True),
)

# Failed logins and WebDAV credential checks, one row per failure and key ("u:<username>",
# "a:<client address>"): the throttle every API replica shares (service/login_throttle.py).
auth_failures = Table(
    "auth_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_auth_failures_key_at", "key", "at"),
    Index("ix_auth_failures_at", "at"),
)

# WebDAV dead properties (PROPPATCH), per namespace and path key; values are XML fragments.
dav_properties = Table(
    "dav_properties",
    metadata,
    Column("namespace_id", Integer, ForeignKey("namespaces.id", ondelete="CASCADE"),
           nullable=False),
    Column("path_key", Text, nullable=False),
    Column("name", String(512), nullable=False),  # Clark notation: {namespace}local
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("namespace_id", "path_key", "name"),
)

# WebDAV locks (LOCK/UNLOCK), shared by every API replica. ``root`` is the locked resource's
# reference URL (``/<namespace>/<path>``, see dav/provider.py); ``expire`` is epoch seconds.
dav_locks = Table(
    "dav_locks",
    metadata,
    Column("token", String(100), primary_key=True),
    Column("namespace_id", Integer, ForeignKey("namespaces.id", ondelete="CASCADE"),
           nullable=False),
    Column("root", Text, nullable=False),
    Column("scope", String(16), nullable=False),  # exclusive | shared
    Column("depth", String(16), nullable=False),  # 0 | infinity
    Column("owner", Text, nullable=False),  # the client's <owner> XML, returned as given
    Column("principal", String(255), nullable=False),
    Column("timeout", Float, nullable=False),
    Column("expire", Float, nullable=False),
    Index("ix_dav_locks_root", "namespace_id", "root"),
)

# The SHA-1 and MD5 of a file's bytes, by content hash (so they never go stale): what WebDAV
# clients such as rclone (vendor=owncloud) send in OC-Checksum and compare against.
content_checksums = Table(
    "content_checksums",
    metadata,
    Column("content_hash", String(64), primary_key=True),
    Column("sha1", String(40), nullable=False),
    Column("md5", String(32), nullable=False),
)
