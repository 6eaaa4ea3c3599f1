"""What the server answers, as frozen typed values (docs/PROTOCOL.md names every field).

``client/remote.py`` turns each JSON answer into one of these at the edge, so nothing above
it indexes dicts by string. ``as_json`` gives back the protocol's shape for ``--json`` output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from minidropbox.core.errors import MiniDropboxError

EntryType = Literal["file", "folder"]


def _kind(value: object) -> EntryType:
    return "folder" if value == "folder" else "file"


def _opt_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _opt_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class Entry:
    """A file or folder as the server has it now (``size``/``version``/``content_hash`` are
    None for folders; ``modified`` is the client mtime of the current version)."""

    path: str
    name: str
    type: EntryType
    size: int | None = None
    version: int | None = None
    modified: float | None = None
    content_hash: str | None = None

    @property
    def is_file(self) -> bool:
        return self.type == "file"

    @property
    def is_folder(self) -> bool:
        return self.type == "folder"

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Entry:
        return cls(path=str(body["path"]), name=str(body.get("name") or ""),
                   type=_kind(body.get("type")), size=_opt_int(body.get("size")),
                   version=_opt_int(body.get("version")),
                   modified=_opt_float(body.get("modified")),
                   content_hash=_opt_str(body.get("content_hash")))

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


ROOT_ENTRY = Entry(path="/", name="", type="folder")


@dataclass(frozen=True)
class TrashEntry:
    """An entry in the trash, and when it went there."""

    path: str
    name: str
    type: EntryType
    deleted_at: float
    size: int | None = None
    version: int | None = None
    modified: float | None = None
    content_hash: str | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> TrashEntry:
        return cls(path=str(body["path"]), name=str(body.get("name") or ""),
                   type=_kind(body.get("type")), deleted_at=float(body["deleted_at"]),
                   size=_opt_int(body.get("size")), version=_opt_int(body.get("version")),
                   modified=_opt_float(body.get("modified")),
                   content_hash=_opt_str(body.get("content_hash")))

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VersionInfo:
    """One version of a file."""

    version: int
    size: int
    content_hash: str
    modified: float
    created_at: float
    device: str

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> VersionInfo:
        return cls(version=int(body["version"]), size=int(body["size"]),
                   content_hash=str(body["content_hash"]), modified=float(body["modified"]),
                   created_at=float(body["created_at"]), device=str(body.get("device") or ""))

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Deleted:
    """What ``DELETE /files`` moved to the trash: the path and how many entries."""

    path: str
    deleted: int
    unshared: int = 0  # members who lost the shared folder the owner deleted

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Change:
    """One journal entry: a committed change to the account's tree (docs/PROTOCOL.md)."""

    cursor: str
    op: str
    path: str
    type: EntryType
    time: float
    from_path: str | None = None
    version: int | None = None
    size: int | None = None
    content_hash: str | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Change:
        return cls(cursor=str(body["cursor"]), op=str(body["op"]), path=str(body["path"]),
                   type=_kind(body.get("type")), time=float(body.get("time") or 0),
                   from_path=_opt_str(body.get("from_path")),
                   version=_opt_int(body.get("version")), size=_opt_int(body.get("size")),
                   content_hash=_opt_str(body.get("content_hash")))

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ServerInfo:
    """``GET /server``: the generation (new after a restore from a backup) and the limits."""

    generation: str
    version: str
    replicas: int
    max_page_size: int
    max_chunk_bytes: int
    max_batch_commits: int

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ServerInfo:
        return cls(generation=str(body["generation"]), version=str(body.get("version", "")),
                   replicas=int(body.get("replicas", 0)),
                   max_page_size=int(body.get("max_page_size", 0)),
                   max_chunk_bytes=int(body.get("max_chunk_bytes", 0)),
                   max_batch_commits=int(body.get("max_batch_commits", 0)))


@dataclass(frozen=True)
class Account:
    """An account, as ``/auth/signup`` and ``/auth/me`` describe it."""

    username: str
    created_at: float
    quota_bytes: int | None = None
    is_admin: bool = False

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Account:
        return cls(username=str(body["username"]), created_at=float(body["created_at"]),
                   quota_bytes=_opt_int(body.get("quota_bytes")),
                   is_admin=bool(body.get("is_admin", False)))

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Usage:
    """``GET /usage``: the quota counts ``used_bytes`` (stored chunks of committed versions,
    each once); the other sizes are logical (every version at its full size)."""

    quota_bytes: int | None
    used_bytes: int
    free_bytes: int | None
    staged_bytes: int
    files: int
    current_bytes: int
    versions_bytes: int
    trash_bytes: int

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Usage:
        return cls(quota_bytes=_opt_int(body.get("quota_bytes")),
                   used_bytes=int(body["used_bytes"]), free_bytes=_opt_int(body.get("free_bytes")),
                   staged_bytes=int(body["staged_bytes"]), files=int(body["files"]),
                   current_bytes=int(body["current_bytes"]),
                   versions_bytes=int(body["versions_bytes"]),
                   trash_bytes=int(body["trash_bytes"]))

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CommitRequest:
    """A new version of ``path`` made of ``chunks`` (in order), on top of ``parent_version``
    (None: the file must not exist yet)."""

    path: str
    size: int
    chunks: tuple[str, ...]
    parent_version: int | None
    mtime: float | None = None
    device: str | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"path": self.path, "size": self.size,
                                "chunks": list(self.chunks),
                                "parent_version": self.parent_version, "mtime": self.mtime}
        if self.device:
            body["device"] = self.device
        return body


# One commit of a batch: the new entry, or the error that commit alone met (a
# ``VersionConflict`` carries ``details["current_version"]``).
CommitResult = Entry | MiniDropboxError


@dataclass(frozen=True)
class ContentInfo:
    """What the headers of a file download say about the bytes that follow."""

    length: int | None
    content_hash: str | None  # from the ETag
    last_modified: float | None


@dataclass(frozen=True)
class FileContent:
    """One file of a ``read_contents`` answer: what the server says of it, and its bytes
    (not yet verified against ``content_hash``)."""

    path: str
    version: int
    size: int
    content_hash: str
    modified: float
    data: bytes


@dataclass(frozen=True)
class ShareLink:
    """A link anyone can open to a file or folder; ``token`` and ``share_url`` are only in
    the answer that made it (the server keeps a hash)."""

    link_id: str
    path: str
    type: EntryType
    mode: str
    password_protected: bool
    show_owner: bool
    downloads: int
    created_at: float
    expires_at: float | None = None
    max_downloads: int | None = None
    last_used_at: float | None = None
    token: str | None = None
    share_url: str | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ShareLink:
        return cls(link_id=str(body["link_id"]), path=str(body["path"]),
                   type=_kind(body.get("type")), mode=str(body["mode"]),
                   password_protected=bool(body["password_protected"]),
                   show_owner=bool(body.get("show_owner", False)),
                   downloads=int(body.get("downloads", 0)),
                   created_at=float(body["created_at"]),
                   expires_at=_opt_float(body.get("expires_at")),
                   max_downloads=_opt_int(body.get("max_downloads")),
                   last_used_at=_opt_float(body.get("last_used_at")),
                   token=_opt_str(body.get("token")), share_url=_opt_str(body.get("share_url")))

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AppPassword:
    """A WebDAV password for one device; ``password`` only in the answer that made it."""

    name: str
    created_at: float
    last_used_at: float | None = None
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> AppPassword:
        return cls(name=str(body["name"]), created_at=float(body["created_at"]),
                   last_used_at=_opt_float(body.get("last_used_at")),
                   username=_opt_str(body.get("username")),
                   password=_opt_str(body.get("password")))


@dataclass(frozen=True)
class Membership:
    """One account's place in a shared folder: ``role`` editor|viewer, ``state``
    invited|member (``path`` is set in the answer to an invitation)."""

    username: str
    role: str
    state: str
    path: str | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Membership:
        return cls(username=str(body["username"]), role=str(body["role"]),
                   state=str(body["state"]), path=_opt_str(body.get("path")))


@dataclass(frozen=True)
class SharedFolder:
    """A shared folder as one member sees it: where it is in their tree, whose it is, their
    role, and (``members``) how many members it has, or who they are."""

    path: str
    name: str
    owner: str
    role: str
    members: int | tuple[Membership, ...] = 0

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> SharedFolder:
        raw = body.get("members", 0)
        members: int | tuple[Membership, ...] = (
            tuple(Membership.from_json(m) for m in raw) if isinstance(raw, list) else int(raw))
        return cls(path=str(body["path"]), name=str(body["name"]), owner=str(body["owner"]),
                   role=str(body["role"]), members=members)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        if isinstance(self.members, tuple):
            out["members"] = [{k: v for k, v in asdict(m).items() if k != "path"}
                              for m in self.members]
        return out


@dataclass(frozen=True)
class FolderInvite:
    """An invitation to a shared folder, waiting for this account."""

    invite_id: int
    name: str
    owner: str
    role: str
    created_at: float

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> FolderInvite:
        return cls(invite_id=int(body["invite_id"]), name=str(body["name"]),
                   owner=str(body["owner"]), role=str(body["role"]),
                   created_at=float(body["created_at"]))

