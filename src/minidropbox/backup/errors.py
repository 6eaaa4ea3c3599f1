"""Backup errors: each a ``MiniDropboxError`` with its message, code and CLI exit code."""

from __future__ import annotations

from minidropbox.core.errors import Conflict, InvalidInput, MiniDropboxError, NotFound


class NotARepository(NotFound):
    """This is not a backup repository."""

    code = "not_a_repository"


class SnapshotNotFound(NotFound):
    """No such snapshot in the repository."""

    code = "snapshot_not_found"


class RepositoryLocked(Conflict):
    """Another backup or prune is using the repository."""

    code = "repository_locked"


class TargetNotEmpty(Conflict):
    """The restore target is not an empty directory."""

    code = "target_not_empty"


class MetadataUnavailable(MiniDropboxError):
    """The metadata database cannot be copied."""

    code = "metadata_unavailable"
    exit_code = 7


class BackupConfigError(InvalidInput):
    """The backup is not configured well enough to run."""

    code = "backup_config"


class BackupIncomplete(MiniDropboxError):
    """The snapshot was written, but some chunks were on no storage node."""

    code = "backup_incomplete"
    exit_code = 9


class RepositoryDamaged(MiniDropboxError):
    """The repository failed verification."""

    code = "repository_damaged"
    exit_code = 9


class BackupCancelled(MiniDropboxError):
    """The backup was stopped before it finished."""

    code = "backup_cancelled"
    exit_code = 130


class EmptySnapshotRefused(Conflict):
    """The metadata holds no users and no files, while an earlier snapshot had some."""
