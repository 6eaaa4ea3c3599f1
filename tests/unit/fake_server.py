"""The part of the API the sync client uses, in memory, behind ``httpx.MockTransport``.

Enough of docs/PROTOCOL.md for the real ``Remote``, upload and download code to run against
it: chunks (missing, PUT, batch), commits (single and batch, with parent versions), entries
(metadata, recursive listing, folder, move, delete with ``If-Match``), content with ``ETag``,
the journal (``/changes``) and ``/server``. Paths are case-insensitive, as on the server.
The real server is exercised by tests/integration and tests/e2e.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from minidropbox.client.remote import Remote
from minidropbox.core.chunking import content_hash, sha256_hex
from minidropbox.core.paths import name_of, normalize_path, parent_of, path_key
from tests.unit.mock_remote import mock_remote

PART_RE = re.compile(rb'name="([0-9a-f]{64})"\r\n.*?\r\n\r\n(.*?)\r\n--', re.S)


@dataclass
class FakeEntry:
    path: str
    type: str
    version: int | None = None
    chunks: list[str] = field(default_factory=list)
    size: int | None = None
    modified: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "name": name_of(self.path), "type": self.type,
                "size": self.size, "version": self.version, "modified": self.modified,
                "content_hash": content_hash(self.chunks) if self.type == "file" else None}


def _error(status: int, code: str, message: str = "", **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message or code,
                                                  **extra}})


class FakeServer:
    """One account's tree, its chunks and its journal."""

    def __init__(self) -> None:
        self.chunks: dict[str, bytes] = {}
        self.entries: dict[str, FakeEntry] = {}  # by path_key
        self.journal: list[dict[str, Any]] = []
        self.requests: list[str] = []

    def remote(self) -> Remote:
        return mock_remote(self.handle)

    # -- helpers for tests ---------------------------------------------------------------------
    def put_file(self, path: str, data: bytes, mtime: float = 1_600_000_000.0) -> None:
        h = sha256_hex(data)
        self.chunks[h] = data
        self._commit(normalize_path(path), [h], len(data), mtime)

    def delete(self, path: str) -> None:
        """What another device deleting ``path`` does."""
        self._delete(normalize_path(path), None)

    def move(self, source: str, dest: str) -> None:
        """What another device moving ``source`` to ``dest`` does."""
        self._move(normalize_path(source), normalize_path(dest))

    def content(self, path: str) -> bytes:
        entry = self.entries[path_key(path)]
        return b"".join(self.chunks[h] for h in entry.chunks)

    def files(self) -> dict[str, bytes]:
        return {e.path: self.content(e.path) for e in self.entries.values() if e.type == "file"}

    # -- the protocol --------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/v1")
        params = request.url.params
        self.requests.append(f"{request.method} {path}")
        body = json.loads(request.content) if request.headers.get(
            "content-type", "").startswith("application/json") else None
        if path == "/server":
            return httpx.Response(200, json={
                "generation": "g1", "version": "test", "replicas": 1, "time": 0.0,
                "max_page_size": 1000, "max_chunk_bytes": 8 << 20, "max_batch_commits": 1000,
                "journal_retention": 100_000, "longpoll_max_timeout": 60.0,
                "ws_ping_interval": 20.0})
        if path == "/changes":
            return self._changes(params.get("cursor"))
        if path == "/chunks/missing":
            assert body is not None
            return httpx.Response(200, json={"missing": [h for h in body["hashes"]
                                                         if h not in self.chunks]})
        if path.startswith("/chunks/") and request.method == "PUT":
            self.chunks[path.rsplit("/", 1)[1]] = request.content
            return httpx.Response(201, json={"hash": path.rsplit("/", 1)[1],
                                             "size": len(request.content)})
        if path == "/chunks/batch":
            for h, data in PART_RE.findall(request.read()):
                assert sha256_hex(data) == h.decode()
                self.chunks[h.decode()] = data
            return httpx.Response(201, json={"stored": []})
        if path == "/files/commit":
            assert body is not None
            return self._commit_request(body)
        if path == "/files/commit_batch":
            assert body is not None
            results = []
            for commit in body["commits"]:
                answer = self._commit_request(commit)
                got = json.loads(answer.content)
                results.append({"ok": True, "entry": got} if answer.status_code == 201
                               else {"ok": False, "error": got["error"]})
            return httpx.Response(200, json={"results": results})
        if path == "/files/metadata":
            entry = self.entries.get(path_key(params["path"]))
            return (httpx.Response(200, json=entry.as_json()) if entry
                    else _error(404, "not_found"))
        if path == "/files/list":
            return self._list(params["path"], params.get("recursive") == "true")
        if path == "/files/folder":
            assert body is not None
            return self._mkdir(normalize_path(body["path"]))
        if path == "/files/move":
            assert body is not None
            return self._move(normalize_path(body["from"]), normalize_path(body["to"]))
        if path == "/files" and request.method == "DELETE":
            return self._delete(normalize_path(params["path"]), request.headers.get("if-match"))
        if path == "/files/content":
            return self._content(params["path"], params.get("version"))
        raise AssertionError(f"the fake server does not know {request.method} {path}")

    def _log(self, op: str, entry: FakeEntry, from_path: str | None = None) -> None:
        seq = len(self.journal) + 1
        data = entry.as_json()
        self.journal.append({"cursor": f"c{seq}", "op": op, "path": entry.path,
                             "from_path": from_path, "type": entry.type,
                             "version": data["version"], "size": data["size"],
                             "content_hash": data["content_hash"], "time": 0.0})

    def _changes(self, cursor: str | None) -> httpx.Response:
        head = f"c{len(self.journal)}"
        if cursor is None:
            return httpx.Response(200, json={"cursor": head})
        if not re.fullmatch(r"c\d+", cursor) or int(cursor[1:]) > len(self.journal):
            return _error(410, "reset")
        entries = self.journal[int(cursor[1:]):]
        return httpx.Response(200, json={"entries": entries, "cursor": head,
                                         "has_more": False})

    def _ensure_parents(self, path: str) -> None:
        parent = parent_of(path)
        if parent == "/" or path_key(parent) in self.entries:
            return
        self._ensure_parents(parent)
        folder = FakeEntry(parent, "folder")
        self.entries[path_key(parent)] = folder
        self._log("mkdir", folder)

    def _commit_request(self, body: dict[str, Any]) -> httpx.Response:
        path = normalize_path(body["path"])
        for h in body["chunks"]:
            if h not in self.chunks:
                return _error(400, "missing_chunk", h)
        current = self.entries.get(path_key(path))
        if current is not None and current.type == "folder":
            return _error(409, "already_exists")
        current_version = current.version if current else None
        if body["parent_version"] != current_version:
            return _error(409, "version_conflict", current_version=current_version)
        entry = self._commit(path, body["chunks"], body["size"], body.get("mtime") or 0.0)
        return httpx.Response(201, json=entry.as_json())

    def _commit(self, path: str, chunks: list[str], size: int, mtime: float) -> FakeEntry:
        self._ensure_parents(path)
        current = self.entries.get(path_key(path))
        version = (current.version or 0) + 1 if current else 1
        entry = FakeEntry(current.path if current else path, "file", version, list(chunks),
                          size, mtime)
        self.entries[path_key(path)] = entry
        self._log("commit", entry)
        return entry

    def _under(self, folder: str) -> list[FakeEntry]:
        prefix = "" if folder == "/" else path_key(folder)
        return [e for k, e in self.entries.items() if k.startswith(prefix + "/")]

    def _list(self, folder: str, recursive: bool) -> httpx.Response:
        folder = normalize_path(folder)
        if folder != "/" and path_key(folder) not in self.entries:
            return _error(404, "not_found")
        found = [e for e in self._under(folder)
                 if recursive or path_key(parent_of(e.path)) == path_key(folder)]
        return httpx.Response(200, json={"entries": [e.as_json() for e in found],
                                         "cursor": None})

    def _mkdir(self, path: str) -> httpx.Response:
        current = self.entries.get(path_key(path))
        if current is not None:
            if current.type != "folder":
                return _error(409, "already_exists")
            return httpx.Response(201, json=current.as_json())
        self._ensure_parents(path)
        entry = FakeEntry(path, "folder")
        self.entries[path_key(path)] = entry
        self._log("mkdir", entry)
        return httpx.Response(201, json=entry.as_json())

    def _move(self, src: str, dst: str) -> httpx.Response:
        entry = self.entries.get(path_key(src))
        if entry is None:
            return _error(404, "not_found")
        if path_key(dst) in self.entries and path_key(dst) != path_key(src):
            return _error(409, "already_exists")  # a case-only rename is allowed
        self._ensure_parents(dst)
        for moved in [entry, *self._under(src)]:
            del self.entries[path_key(moved.path)]
            moved.path = dst + moved.path[len(src):]
            self.entries[path_key(moved.path)] = moved
        self._log("move", entry, from_path=src)
        return httpx.Response(200, json=entry.as_json())

    def _delete(self, path: str, if_match: str | None) -> httpx.Response:
        entry = self.entries.get(path_key(path))
        if entry is None:
            return _error(404, "not_found")
        if if_match is not None and entry.type == "file" and str(entry.version) != if_match:
            return _error(409, "version_conflict")
        gone = [entry, *self._under(path)]
        for e in gone:
            del self.entries[path_key(e.path)]
        self._log("delete", entry)
        return httpx.Response(200, json={"path": path, "deleted": len(gone)})

    def _content(self, path: str, version: str | None) -> httpx.Response:
        entry = self.entries.get(path_key(path))
        if entry is None or entry.type != "file":
            return _error(404, "not_found")
        if version is not None and int(version) != entry.version:
            return _error(404, "not_found", "only the current version is kept here")
        data = self.content(path)
        return httpx.Response(200, content=data, headers={
            "ETag": f'"{content_hash(entry.chunks)}"', "Content-Length": str(len(data))})
