"""The part of the API the sync client uses, in memory, behind ``httpx.MockTransport``.

Enough of docs/PROTOCOL.md for the real ``Remote``, upload and download code to run against
it: chunks (missing, PUT, batch), commits (single and batch, with parent versions), entries
(metadata, recursive listing, folder, move, delete with ``If-Match``), content of any version
with ``ETag`` (one file, or many small ones in one answer), the journal (``/changes``) and
``/server``. The rules are the real server's
(``service/files.py``): paths are case-insensitive and keep the spelling they were created
with; a commit of the current bytes makes no version; nothing is written under a file, over
a folder, or (a folder) into itself; a deleted entry's versions go to the trash, and an entry
created again at that path starts again at version 1. Every version ever committed stays in
``history``, so a test can ask whether any content was lost. The real server is exercised by
tests/integration and tests/e2e.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from minidropbox.client.api import API_ROOT, ApiClient, error_from_body
from minidropbox.client.config import Credentials
from minidropbox.client.remote import Remote, RetryPolicy
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
    versions: dict[int, list[str]] = field(default_factory=dict)  # number -> chunks

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "name": name_of(self.path), "type": self.type,
                "size": self.size, "version": self.version, "modified": self.modified,
                "content_hash": content_hash(self.chunks) if self.type == "file" else None}


@dataclass
class Call:
    """One request, as the server's rules see it."""

    method: str
    path: str  # below /api/v1
    params: dict[str, str]
    body: Any = None  # the JSON body
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    parts: dict[str, bytes] = field(default_factory=dict)  # a multipart chunk batch


@dataclass
class Answer:
    status: int
    body: Any = None  # JSON
    content: bytes | None = None  # raw bytes instead
    headers: dict[str, str] = field(default_factory=dict)

    def http(self) -> httpx.Response:
        if self.content is not None:
            return httpx.Response(self.status, content=self.content, headers=self.headers)
        return httpx.Response(self.status, json=self.body, headers=self.headers)


def _error(status: int, code: str, message: str = "", **extra: Any) -> Answer:
    return Answer(status, {"error": {"code": code, "message": message or code, **extra}})


class FakeServer:
    """One account's tree, its chunks and its journal."""

    def __init__(self) -> None:
        self.chunks: dict[str, bytes] = {}
        self.entries: dict[str, FakeEntry] = {}  # by path_key
        self.journal: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self.history: list[tuple[str, bytes]] = []  # (path, content) of every version
        self.trash: list[FakeEntry] = []
        # (journal length, content hash, path) of every file a delete removed, in order:
        # whether content deleted came back later as a new file (a move that lost its
        # versions).
        self.deleted: list[tuple[int, str, str]] = []

    def remote(self) -> Remote:
        """A ``Remote`` over HTTP (``httpx.MockTransport``): the real client, every byte. It
        asks for grants and read plans; this server has no nodes, so it hands out none."""
        return mock_remote(self.handle, direct=True)

    def direct_remote(self, serve: Serve | None = None) -> Remote:
        """A ``Remote`` that hands each call to ``serve`` (default: this server) without
        HTTP: the same ``Remote`` methods, error classes and retries, a hundred times
        cheaper (the simulation runs thousands of schedules)."""
        return Remote(DirectApi(serve or self.serve), RetryPolicy(base_delay=0.0, sleep=_no_wait))

    # -- helpers for tests ---------------------------------------------------------------------
    def put_file(self, path: str, data: bytes, mtime: float = 1_600_000_000.0) -> None:
        h = sha256_hex(data)
        self.chunks[h] = data
        self._commit(normalize_path(path), [h], len(data), mtime)

    def make_folder(self, path: str) -> None:
        """What another device making the folder ``path`` (and its parents) does."""
        self._mkdir(normalize_path(path))

    def delete(self, path: str) -> None:
        """What another device deleting ``path`` does."""
        self._delete(normalize_path(path), None)

    def move(self, source: str, dest: str) -> None:
        """What another device moving ``source`` to ``dest`` does."""
        self._move(normalize_path(source), normalize_path(dest))

    def content(self, path: str) -> bytes:
        entry = self.entries[path_key(path)]
        return b"".join(self.chunks[h] for h in entry.chunks)

    def tree(self) -> dict[str, bytes | None]:
        """Every live path (as spelled here) -> its bytes, or None for a folder."""
        return {e.path: self.content(e.path) if e.type == "file" else None
                for e in self.entries.values()}

    def files(self) -> dict[str, bytes]:
        return {e.path: self.content(e.path) for e in self.entries.values() if e.type == "file"}

    # -- the protocol --------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        """The HTTP form (``httpx.MockTransport``): what the real ``ApiClient`` sends."""
        parts: dict[str, bytes] = {}
        if request.url.path.endswith("/chunks/batch"):
            parts = {h.decode(): data for h, data in PART_RE.findall(request.read())}
        body = json.loads(request.content) if request.headers.get(
            "content-type", "").startswith("application/json") else None
        call = Call(request.method, request.url.path.removeprefix("/api/v1"),
                    dict(request.url.params), body, request.content,
                    {k.lower(): v for k, v in request.headers.items()}, parts)
        return self.serve(call).http()

    def serve(self, call: Call) -> Answer:
        path, params, body = call.path, call.params, call.body
        self.requests.append(f"{call.method} {path}")
        if path == "/server":
            return Answer(200, {
                "generation": "g1", "version": "test", "replicas": 1, "time": 0.0,
                "max_page_size": 1000, "max_chunk_bytes": 8 << 20, "max_batch_commits": 1000,
                "journal_retention": 100_000, "longpoll_max_timeout": 60.0,
                "ws_ping_interval": 20.0})
        if path == "/changes":
            return self._changes(params.get("cursor"))
        if path == "/chunks/missing":
            assert body is not None
            return Answer(200, {"missing": [h for h in body["hashes"] if h not in self.chunks]})
        if path.startswith("/chunks/") and call.method == "PUT":
            self.chunks[path.rsplit("/", 1)[1]] = call.content
            return Answer(201, {"hash": path.rsplit("/", 1)[1], "size": len(call.content)})
        if path == "/chunks/batch":
            for h, data in call.parts.items():
                assert sha256_hex(data) == h
                self.chunks[h] = data
            return Answer(201, {"stored": []})
        if path == "/files/commit":
            assert body is not None
            return self._commit_request(body)
        if path == "/files/commit_batch":
            assert body is not None
            results = []
            for commit in body["commits"]:
                answer = self._commit_request(commit)
                results.append({"ok": True, "entry": answer.body} if answer.status == 201
                               else {"ok": False, "error": answer.body["error"]})
            return Answer(200, {"results": results})
        if path == "/files/metadata":
            entry = self.entries.get(path_key(params["path"]))
            return Answer(200, entry.as_json()) if entry else _error(404, "not_found")
        if path == "/files/list":
            return self._list(params["path"], params.get("recursive") == "true")
        if path == "/files/folder":
            assert body is not None
            return self._mkdir(normalize_path(body["path"]))
        if path == "/files/move":
            assert body is not None
            return self._move(normalize_path(body["from"]), normalize_path(body["to"]))
        if path == "/files" and call.method == "DELETE":
            return self._delete(normalize_path(params["path"]), call.headers.get("if-match"))
        if path == "/files/content":
            return self._content(params["path"], params.get("version"))
        if path == "/files/chunks":
            return self._read_plan(params["path"], params.get("version"))
        if path == "/files/contents":
            assert body is not None
            return self._contents(body["files"])
        raise AssertionError(f"the fake server does not know {call.method} {path}")

    def _log(self, op: str, entry: FakeEntry, from_path: str | None = None) -> None:
        seq = len(self.journal) + 1
        data = entry.as_json()
        self.journal.append({"cursor": f"c{seq}", "op": op, "path": entry.path,
                             "from_path": from_path, "type": entry.type,
                             "version": data["version"], "size": data["size"],
                             "content_hash": data["content_hash"], "time": 0.0})

    def _changes(self, cursor: str | None) -> Answer:
        head = f"c{len(self.journal)}"
        if cursor is None:
            return Answer(200, {"cursor": head})
        if not re.fullmatch(r"c\d+", cursor) or int(cursor[1:]) > len(self.journal):
            return _error(410, "reset")
        entries = self.journal[int(cursor[1:]):]
        return Answer(200, {"entries": entries, "cursor": head, "has_more": False})

    def _blocked(self, path: str) -> str | None:
        """The path of a file standing where one of ``path``'s folders would be."""
        parent = parent_of(path)
        while parent != "/":
            found = self.entries.get(path_key(parent))
            if found is not None and found.type != "folder":
                return found.path
            parent = parent_of(parent)
        return None

    def _ensure_parents(self, path: str) -> None:
        parent = parent_of(path)
        if parent == "/" or path_key(parent) in self.entries:
            return
        self._ensure_parents(parent)
        folder = FakeEntry(parent, "folder")
        self.entries[path_key(parent)] = folder
        self._log("mkdir", folder)

    def _commit_request(self, body: dict[str, Any]) -> Answer:
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
        if current is not None and current.chunks == body["chunks"]:
            return Answer(201, current.as_json())  # same bytes: no new version
        if current is None and self._blocked(path):
            return _error(409, "already_exists", f"{self._blocked(path)} is a file")
        entry = self._commit(path, body["chunks"], body["size"], body.get("mtime") or 0.0)
        return Answer(201, entry.as_json())

    def _commit(self, path: str, chunks: list[str], size: int, mtime: float) -> FakeEntry:
        self._ensure_parents(path)
        entry = self.entries.get(path_key(path))
        if entry is None:
            entry = FakeEntry(path, "file")  # a new entry (again): versions start at 1
            self.entries[path_key(path)] = entry
        entry.version = (entry.version or 0) + 1
        entry.chunks, entry.size, entry.modified = list(chunks), size, mtime
        entry.versions[entry.version] = list(chunks)
        self.history.append((entry.path, b"".join(self.chunks[h] for h in chunks)))
        self._log("commit", entry)
        return entry

    def _under(self, folder: str) -> list[FakeEntry]:
        prefix = "" if folder == "/" else path_key(folder)
        return [e for k, e in self.entries.items() if k.startswith(prefix + "/")]

    def _list(self, folder: str, recursive: bool) -> Answer:
        folder = normalize_path(folder)
        if folder != "/" and path_key(folder) not in self.entries:
            return _error(404, "not_found")
        found = [e for e in self._under(folder)
                 if recursive or path_key(parent_of(e.path)) == path_key(folder)]
        return Answer(200, {"entries": [e.as_json() for e in found], "cursor": None})

    def _mkdir(self, path: str) -> Answer:
        current = self.entries.get(path_key(path))
        if current is not None:
            if current.type != "folder":
                return _error(409, "already_exists")
            return Answer(201, current.as_json())
        if self._blocked(path):
            return _error(409, "already_exists", f"{self._blocked(path)} is a file")
        self._ensure_parents(path)
        entry = FakeEntry(path, "folder")
        self.entries[path_key(path)] = entry
        self._log("mkdir", entry)
        return Answer(201, entry.as_json())

    def _move(self, src: str, dst: str) -> Answer:
        entry = self.entries.get(path_key(src))
        if entry is None:
            return _error(404, "not_found")
        same = path_key(dst) == path_key(src)
        if entry.type == "folder" and not same and path_key(dst).startswith(path_key(src) + "/"):
            return _error(400, "invalid_input", "A folder cannot be moved into itself.")
        if path_key(dst) in self.entries and not same:
            return _error(409, "already_exists")  # a case-only rename is allowed
        if same and entry.path == dst:
            return Answer(200, entry.as_json())
        if self._blocked(dst):
            return _error(409, "already_exists", f"{self._blocked(dst)} is a file")
        self._ensure_parents(dst)
        for moved in [entry, *self._under(src)]:
            del self.entries[path_key(moved.path)]
            moved.path = dst + moved.path[len(src):]
            self.entries[path_key(moved.path)] = moved
        self._log("move", entry, from_path=src)
        return Answer(200, entry.as_json())

    def _delete(self, path: str, if_match: str | None) -> Answer:
        entry = self.entries.get(path_key(path))
        if entry is None:
            return _error(404, "not_found")
        if if_match is not None and entry.type == "file" and str(entry.version) != if_match:
            return _error(409, "version_conflict")
        gone = [entry, *self._under(path)]
        for e in gone:
            del self.entries[path_key(e.path)]
            if e.type == "file":
                self.deleted.append((len(self.journal), content_hash(e.chunks), e.path))
        self.trash.extend(gone)
        self._log("delete", entry)
        return Answer(200, {"path": path, "deleted": len(gone)})

    def _read_plan(self, path: str, version: str | None) -> Answer:
        """A read plan with no storage nodes (no grants): the client reads ``/files/content``."""
        entry = self.entries.get(path_key(path))
        if entry is None or entry.type != "file":
            return _error(404, "not_found")
        listed = entry.versions.get(int(version)) if version is not None else entry.chunks
        if listed is None:
            return _error(404, "not_found", f"{path} has no version {version}")
        chunks, offset = [], 0
        for h in listed:
            size = len(self.chunks[h])
            chunks.append({"hash": h, "size": size, "offset": offset, "nodes": [],
                           "grant": None})
            offset += size
        shown = {**entry.as_json(), "size": offset, "content_hash": content_hash(listed)}
        if version is not None:
            shown["version"] = int(version)
        return Answer(200, {"entry": shown, "chunks": chunks, "next_offset": None})

    def _contents(self, files: list[dict[str, Any]]) -> Answer:
        """Several files in one answer: per file a JSON line (entry or error), its bytes."""
        out = []
        for f in files:
            version = f.get("version")
            answer = self._content(f["path"], None if version is None else str(version))
            if answer.status != 200:
                out.append(json.dumps({"path": f["path"], **answer.body}).encode() + b"\n")
                continue
            entry = self.entries[path_key(f["path"])]
            data = answer.content or b""
            head = {"path": entry.path, "version": version or entry.version,
                    "size": len(data), "content_hash": answer.headers["ETag"].strip('"'),
                    "modified": entry.modified}
            out.append(json.dumps(head).encode() + b"\n" + data)
        return Answer(200, content=b"".join(out))

    def _content(self, path: str, version: str | None) -> Answer:
        entry = self.entries.get(path_key(path))
        if entry is None or entry.type != "file":
            return _error(404, "not_found")
        chunks = entry.versions.get(int(version)) if version is not None else entry.chunks
        if chunks is None:
            return _error(404, "not_found", f"{path} has no version {version}")
        data = b"".join(self.chunks[h] for h in chunks)
        return Answer(200, content=data, headers={
            "ETag": f'"{content_hash(chunks)}"', "Content-Length": str(len(data))})


Serve = Callable[[Call], Answer]


def _no_wait(seconds: float) -> None:
    """Retries in the simulation happen at once: its time is its own."""


class _Stream:
    def __init__(self, answer: Answer) -> None:
        self.headers = {k.lower(): v for k, v in answer.headers.items()}
        self.content = answer.content or b""

    def iter_bytes(self, size: int) -> Iterator[bytes]:
        for start in range(0, len(self.content), size):
            yield self.content[start : start + size]


class DirectApi(ApiClient):
    """``ApiClient`` with the HTTP taken out: requests become ``Call``s, answers are turned
    into the same exceptions (``error_from_body``) and values the real client gets."""

    def __init__(self, serve: Serve) -> None:
        creds = Credentials("http://fake", "alice", "token", "refresh", time.time() + 86400)
        super().__init__("http://fake", creds, persist=False,
                         transport=httpx.MockTransport(self._no_http))
        self.serve = serve

    @staticmethod
    def _no_http(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"DirectApi sends no HTTP: {request.method} {request.url}")

    def _call(self, method: str, url: str, kwargs: dict[str, Any]) -> Answer:
        headers = {k.lower(): v for k, v in (kwargs.get("headers") or {}).items()}
        params = {k: str(v) for k, v in (kwargs.get("params") or {}).items()}
        parts = {h: data for h, (_, data, _) in kwargs.get("files") or []}
        call = Call(method, url.removeprefix(API_ROOT), params, kwargs.get("json"),
                    kwargs.get("content") or b"", headers, parts)
        answer = self.serve(call)
        if answer.status >= 400:
            raise error_from_body(answer.status, answer.body,
                                  answer.headers.get("Retry-After"))
        return answer

    def request_json(self, method: str, url: str, **kwargs: Any) -> Any:
        kwargs.pop("auth", None)
        return self._call(method, url, kwargs).body

    @contextmanager
    def stream(self, method: str, url: str, *, headers: dict[str, str] | None = None,
               **kwargs: Any) -> Iterator[Any]:
        yield _Stream(self._call(method, url, {**kwargs, "headers": headers}))
