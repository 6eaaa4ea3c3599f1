"""Why a sync stops: each is a ``MiniDropboxError`` with its own exit code and message."""

from __future__ import annotations

from minidropbox.core.errors import MiniDropboxError


class SyncError(MiniDropboxError):
    """The folder could not be synced."""


class SyncRootMissing(SyncError):
    """The sync folder is missing, was replaced, or its disk is not mounted; nothing was
    deleted."""

    exit_code = 4


class SyncFolderMismatch(SyncError):
    """This folder is already synced with another account, server or remote folder."""

    exit_code = 3


class MassDeleteRefused(SyncError):
    """This sync would delete many files; run again with --allow-mass-delete if intended."""

    exit_code = 5


class NotConverged(SyncError):
    """Some changes could not be synced; see the messages above."""


class SyncFolderBusy(SyncError):
    """Another sync is already running on this folder."""

    exit_code = 5


class NestedSyncFolder(SyncError):
    """A sync folder cannot be inside another sync folder, nor hold one."""

    exit_code = 2


class FilesSkipped(SyncError):
    """Some files cannot be synced; see the messages above."""

    exit_code = 5
