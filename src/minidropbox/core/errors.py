"""One exception tree for the whole product.

Every error a user can cause is a ``MiniDropboxError``. Each class carries the HTTP status the
API answers with, a stable machine-readable ``code``, and the exit code the CLI ends with. The
docstring of each class is its default message. Adapters map these at the edges: the API turns
them into ``{"error": {"code", "message"}}`` bodies, the CLI into one line on stderr.

    MiniDropboxError
    ├── InvalidInput            400 invalid_input
    │   ├── InvalidPath         400 invalid_path
    │   ├── HashMismatch        400 hash_mismatch
    │   ├── MissingChunk        400 missing_chunk
    │   └── TooManyEntries      400 too_many_entries
    ├── Unauthorized            401 unauthorized
    ├── Forbidden               403 forbidden
    ├── ReadOnly                403 read_only (a shared folder one may only read)
    ├── NotFound                404 not_found
    ├── Conflict                409 conflict
    │   ├── AlreadyExists       409 already_exists
    │   └── VersionConflict     409 version_conflict
    ├── CursorReset             410 reset
    ├── PayloadTooLarge         413 too_large
    ├── RangeNotSatisfiable     416 range_not_satisfiable
    ├── TooManyRequests         429 too_many_requests
    ├── StorageUnavailable      503 storage_unavailable
    └── QuotaExceeded           507 quota_exceeded
"""

from __future__ import annotations

from typing import Any


class MiniDropboxError(Exception):
    """Something went wrong."""

    status: int = 500
    code: str = "internal"
    exit_code: int = 1

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or (self.__doc__ or self.code).strip()
        self.details = details
        super().__init__(self.message)


class InvalidInput(MiniDropboxError):
    """The request is not valid."""

    status = 400
    code = "invalid_input"
    exit_code = 2


class InvalidPath(InvalidInput):
    """The path is not valid."""

    code = "invalid_path"


class HashMismatch(InvalidInput):
    """The bytes received do not match their SHA-256 name."""

    code = "hash_mismatch"


class MissingChunk(InvalidInput):
    """A chunk named in the commit has not been uploaded by this user."""

    code = "missing_chunk"


class TooManyEntries(InvalidInput):
    """This change would touch more files and folders at once than the server allows."""

    code = "too_many_entries"


class Unauthorized(MiniDropboxError):
    """Authentication is required: log in again."""

    status = 401
    code = "unauthorized"
    exit_code = 3


class Forbidden(MiniDropboxError):
    """This operation is not allowed for this account."""

    status = 403
    code = "forbidden"
    exit_code = 3


class InvalidGrant(MiniDropboxError):
    """This grant is not valid for this chunk, method or storage node (or it has expired)."""

    status = 403
    code = "invalid_grant"
    exit_code = 3


class InvalidReceipt(InvalidInput):
    """A storage receipt is not valid for this account (forged, moved, stale)."""

    code = "invalid_receipt"


class ReadOnly(MiniDropboxError):
    """This folder is shared with you read-only.

    Not a ``Forbidden``: a sync client reports it for the one change and carries on."""

    status = 403
    code = "read_only"
    exit_code = 3


class NotFound(MiniDropboxError):
    """No such file or folder."""

    status = 404
    code = "not_found"
    exit_code = 4


class Conflict(MiniDropboxError):
    """The request conflicts with the current state."""

    status = 409
    code = "conflict"
    exit_code = 5


class AlreadyExists(Conflict):
    """Something already exists there."""

    code = "already_exists"


class VersionConflict(Conflict):
    """The file changed on the server since the version this change was based on."""

    code = "version_conflict"


class CursorReset(MiniDropboxError):
    """The cursor is unknown or too old; do a full listing."""

    status = 410
    code = "reset"
    exit_code = 5


class PayloadTooLarge(MiniDropboxError):
    """The request body is too large."""

    status = 413
    code = "too_large"
    exit_code = 2


class RangeNotSatisfiable(MiniDropboxError):
    """The requested byte range is outside the file."""

    status = 416
    code = "range_not_satisfiable"
    exit_code = 2


class TooManyRequests(MiniDropboxError):
    """Too many requests; try again later."""

    status = 429
    code = "too_many_requests"
    exit_code = 6

    def __init__(self, message: str | None = None, *, retry_after: int = 60) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


class StorageUnavailable(MiniDropboxError):
    """Not enough storage nodes are available to store the data safely."""

    status = 503
    code = "storage_unavailable"
    exit_code = 7


class QuotaExceeded(MiniDropboxError):
    """This upload would exceed the account's storage quota."""

    status = 507
    code = "quota_exceeded"
    exit_code = 8
