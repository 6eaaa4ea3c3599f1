"""Chunks as objects in an S3-compatible bucket (SeaweedFS, MinIO, Ceph RGW, Garage, AWS S3).

The bucket replaces the storage nodes: it keeps its own copies (erasure coding, replication,
geo-replication are the object store's job), so the cluster writes one copy (R = 1) and repair
has nothing to copy. Layout: ``<prefix>chunks/<ab>/<cd>/<sha256>`` — a fan-out prefix from the
hash, as on a node's disk, and listing in key order is listing in hash order.

Both adapters keep the chunk-store contract (``storage/base.py``) and map the store's answers
onto the same exceptions as a node:

    missing object → ChunkNotFound     bytes that do not hash to the name → CorruptChunk
    refused credentials, 5xx, timeouts, unreachable → StoreUnavailable

Integrity on the way in: every PUT is signed with the payload's SHA-256
(``x-amz-content-sha256``), which the object store checks against the body before storing it;
the chunk's name *is* that SHA-256, so a body that does not match its name is refused by the
store itself (and checked here first, so the caller gets ``HashMismatch``). On the way out every
whole-chunk read is re-hashed here. An object store writes atomically: a partial object is never
visible under its key.

The client is obstore (the Rust ``object_store`` crate): chosen by measurement against the
alternatives, see docs/DESIGN.md "Object storage".
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import obstore
from obstore.exceptions import (
    BaseError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from obstore.store import S3Store

from minidropbox.core.errors import HashMismatch, InvalidInput
from minidropbox.storage.base import (
    ChunkNotFound,
    CorruptChunk,
    StoreError,
    StoreStats,
    StoreUnavailable,
)
from minidropbox.storage.disk import BLOCK, check_name, check_range

QuarantineList = list[dict[str, str]]

COUNT_EVERY = 600.0  # seconds between counts of a bucket's objects (a full listing)

log = logging.getLogger("minidropbox.s3")

# An object store has no "free space"; this is what the admin views show for it.
UNBOUNDED = 1 << 62


@dataclass(frozen=True)
class S3Location:
    """Where the chunks live and how to reach them (never printed with its secret)."""

    endpoint: str
    bucket: str
    prefix: str = ""
    region: str = "us-east-1"
    virtual_hosted: bool = False
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None

    @classmethod
    def parse(cls, url: str, credentials: dict[str, str] | None = None) -> S3Location:
        """``s3://bucket/prefix?endpoint=http://host:port&region=r&addressing=path|virtual``.

        Credentials come from ``credentials`` (a dict with ``access_key_id`` and
        ``secret_access_key``), else from the usual AWS environment variables.
        """
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise InvalidInput(f"Not an S3 location: {url!r} (expected s3://bucket/prefix?...).")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        endpoint = query.get("endpoint", "")
        if not endpoint:
            region = query.get("region", "us-east-1")
            endpoint = f"https://s3.{region}.amazonaws.com"
        addressing = query.get("addressing", "path")
        if addressing not in ("path", "virtual"):
            raise InvalidInput(f"S3 addressing must be 'path' or 'virtual', not {addressing!r}.")
        prefix = parts.path.strip("/")
        creds = credentials or {}
        return cls(
            endpoint=endpoint.rstrip("/"), bucket=parts.netloc,
            prefix=f"{prefix}/" if prefix else "",
            region=query.get("region", "us-east-1"), virtual_hosted=addressing == "virtual",
            access_key_id=creds.get("access_key_id") or os.environ.get("AWS_ACCESS_KEY_ID"),
            secret_access_key=(creds.get("secret_access_key")
                               or os.environ.get("AWS_SECRET_ACCESS_KEY")),
            session_token=creds.get("session_token") or os.environ.get("AWS_SESSION_TOKEN"),
        )

    def key(self, name: str) -> str:
        return f"{self.prefix}chunks/{name[:2]}/{name[2:4]}/{name}"

    def list_offset(self, after: str) -> str | None:
        """The key to list after so that every chunk name above ``after`` (a whole name or
        any prefix of one) comes back: keys sort as their names do, '/' below every digit."""
        if not after:
            return None
        if len(after) > 64 or any(c not in "0123456789abcdef" for c in after):
            raise InvalidInput("'after' must be lowercase hex, at most 64 digits.")
        return self.key(after)

    @property
    def chunks_prefix(self) -> str:
        return f"{self.prefix}chunks"

    def __repr__(self) -> str:  # never the secret
        return f"S3Location({self.endpoint!r}, bucket={self.bucket!r}, prefix={self.prefix!r})"

    def open(self, timeout: float) -> S3Store:
        config: dict[str, Any] = {
            "endpoint": self.endpoint, "region": self.region,
            "virtual_hosted_style_request": self.virtual_hosted,
        }
        if self.access_key_id and self.secret_access_key:
            config["access_key_id"] = self.access_key_id
            config["secret_access_key"] = self.secret_access_key
            if self.session_token:
                config["session_token"] = self.session_token
        else:
            config["skip_signature"] = True
        client = {"allow_http": self.endpoint.startswith("http://"),
                  "timeout": f"{max(timeout, 0.1):.3f}s",
                  "connect_timeout": f"{max(min(timeout, 5.0), 0.1):.3f}s"}
        # Retries belong to the caller (it falls over, repairs, or the client retries); one
        # short retry here only hides a dropped keep-alive connection.
        retry = {"max_retries": 1, "retry_timeout": timedelta_seconds(timeout)}
        return S3Store(self.bucket, config=config, client_options=client,  # type: ignore[arg-type]
                       retry_config=retry)  # type: ignore[arg-type]


def timedelta_seconds(seconds: float) -> timedelta:
    return timedelta(seconds=max(seconds, 0.1))


def load_credentials_file(path: str) -> dict[str, str]:
    """An AWS-style credentials file (``[default]`` section, ``aws_access_key_id = ...``)."""
    import configparser
    parser = configparser.ConfigParser()
    if not parser.read(path):
        raise InvalidInput(f"Cannot read the S3 credentials file {path}.")
    section = parser["default"] if parser.has_section("default") else parser[parser.sections()[0]]
    found = {"access_key_id": section.get("aws_access_key_id", ""),
             "secret_access_key": section.get("aws_secret_access_key", ""),
             "session_token": section.get("aws_session_token", "")}
    return {k: v for k, v in found.items() if v}


def _verified(name: str, data: bytes | memoryview) -> bytes:
    if hashlib.sha256(data).hexdigest() != name:
        raise CorruptChunk(f"Chunk {name} is corrupt in the object store.")
    return bytes(data)


def _check_put(name: str, data: bytes | memoryview) -> None:
    check_name(name)
    if hashlib.sha256(data).hexdigest() != name:
        raise HashMismatch(f"The bytes sent do not hash to {name}.")


@contextlib.contextmanager
def _store_errors(where: S3Location, name: str | None = None) -> Iterator[None]:
    try:
        yield
    except (NotFoundError, FileNotFoundError):  # obstore raises the builtin for a 404
        raise ChunkNotFound(f"Chunk {name} is not in the object store.") from None
    except (PermissionDeniedError, UnauthenticatedError, PermissionError):
        raise StoreUnavailable(f"The object store {where.endpoint} refused the "
                               "credentials.") from None
    except (BaseError, OSError, TimeoutError) as exc:
        raise StoreUnavailable(_describe(where, exc)) from None


def _describe(where: S3Location, exc: BaseException) -> str:
    """One line for an object store's failure: its own error code and message when it sent
    one (``<Code>NoSuchBucket</Code>``), else the first line of the client's."""
    text = str(exc)
    code = re.search(r"<Code>([^<]{1,64})</Code>", text)
    if code and code.group(1) == "NoSuchBucket":
        return (f"The bucket {where.bucket!r} does not exist at {where.endpoint}: "
                "create it first.")
    if code:
        message = re.search(r"<Message>([^<]{1,200})</Message>", text)
        return (f"The object store {where.endpoint} answered {code.group(1)}"
                f"{': ' + message.group(1) if message else ''}.")
    detail = text.splitlines()[0][:200] if text else type(exc).__name__
    return f"The object store {where.endpoint} failed: {detail}"


def _range_options(start: int, end: int | None) -> dict[str, Any]:
    if start == 0 and end is None:
        return {}
    if end is None:
        return {"range": {"offset": start}}
    return {"range": (start, end)}


class S3ChunkStore:
    """A ``ChunkStore`` in a bucket (blocking: tools, backup, restore, the contract suite)."""

    def __init__(self, location: S3Location, timeout: float = 30.0) -> None:
        self.location = location
        self.url = f"s3://{location.bucket}/{location.prefix}"
        self._store = location.open(timeout)

    def __repr__(self) -> str:
        return f"S3ChunkStore({self.location!r})"

    def close(self) -> None:
        """Nothing to release: the client's pool goes with the object."""

    def __enter__(self) -> S3ChunkStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check_bucket(self, create: bool = True) -> None:
        """Raise ``StoreUnavailable`` (one clear line) unless the bucket answers. A missing
        bucket is created by a first write where the store does that for its admins
        (SeaweedFS, and MinIO with auto-create); elsewhere the error says to create it."""
        marker = f"{self.location.prefix}.minidropbox"
        try:
            with _store_errors(self.location):
                obstore.head(self._store, marker)
        except ChunkNotFound:
            with _store_errors(self.location):
                obstore.put(self._store, marker, b"Chunks of a Mini-Dropbox installation.\n")
        except StoreUnavailable:
            if not create:
                raise
            with contextlib.suppress(StoreUnavailable), _store_errors(self.location):
                obstore.put(self._store, marker, b"Chunks of a Mini-Dropbox installation.\n")
            self.check_bucket(create=False)

    def put(self, name: str, data: bytes) -> None:
        _check_put(name, data)
        if self.size(name) == len(data):
            return  # already there: a cheap no-op, as on a node
        with _store_errors(self.location, name):
            obstore.put(self._store, self.location.key(name), data, use_multipart=False)

    def get(self, name: str) -> bytes:
        check_name(name)
        with _store_errors(self.location, name):
            data = obstore.get(self._store, self.location.key(name)).bytes()
        return _verified(name, memoryview(data))

    def size(self, name: str) -> int | None:
        check_name(name)
        try:
            with _store_errors(self.location, name):
                return int(obstore.head(self._store, self.location.key(name))["size"])
        except ChunkNotFound:
            return None

    def has(self, name: str) -> bool:
        return self.size(name) is not None

    def delete(self, name: str) -> None:
        check_name(name)
        try:
            with _store_errors(self.location, name):
                obstore.delete(self._store, self.location.key(name))
        except ChunkNotFound:
            pass

    def list(self, after: str = "", limit: int = 1000) -> list[str]:
        offset = self.location.list_offset(after)
        names: list[str] = []
        with _store_errors(self.location):
            for batch in obstore.list(self._store, self.location.chunks_prefix, offset=offset,
                                      chunk_size=min(limit, 1000)):
                names.extend(_names(batch))
                if len(names) >= limit:
                    break
        return sorted(n for n in names if n > after)[:limit]

    def stat(self) -> StoreStats:
        """Used bytes and chunk count by listing the bucket (an operator's view, not cheap)."""
        used = count = 0
        with _store_errors(self.location):
            for batch in obstore.list(self._store, self.location.chunks_prefix, chunk_size=1000):
                for meta in batch:
                    used += int(meta["size"])
                    count += 1
        return StoreStats(used_bytes=used, free_bytes=UNBOUNDED, chunk_count=count)

    def iter_range(self, name: str, start: int = 0, end: int | None = None,
                   block: int = BLOCK) -> Iterator[bytes]:
        """Bytes ``[start, end)`` as they arrive, unverified (the caller checks what it needs)."""
        size = self.size(name)
        if size is None:
            raise ChunkNotFound(f"Chunk {name} is not in the object store.")
        check_range(size, start, end)
        stop = size if end is None else min(end, size)
        if stop <= start:
            return iter(())
        return self._stream(name, start, stop, block)

    def _stream(self, name: str, start: int, stop: int, block: int) -> Iterator[bytes]:
        with _store_errors(self.location, name):
            result = obstore.get(self._store, self.location.key(name),
                                 options=_range_options(start, stop))  # type: ignore[arg-type]
            for part in result.stream(min_chunk_size=min(block, 256 * 1024)):
                yield from _blocks(part, block)


def _blocks(part: Any, block: int) -> Iterator[bytes]:
    """``part`` in pieces of at most ``block`` bytes (the store hands out bigger ones)."""
    view = memoryview(part)
    for offset in range(0, len(view), block):
        yield bytes(view[offset:offset + block])


def _names(batch: Any) -> list[str]:
    return [str(meta["path"]).rsplit("/", 1)[-1] for meta in batch]


class AsyncS3Store:
    """The API's handle on the bucket: the same calls as ``AsyncNodeClient``.

    Every call is bounded by ``timeout`` as a whole, except ``stream``, which bounds each
    step, so a hung endpoint raises ``StoreUnavailable`` in time for the caller.
    """

    def __init__(self, location: S3Location, timeout: float = 5.0,
                 scrub_rate: float = 0.0) -> None:
        self.location = location
        self.url = f"s3://{location.bucket}/{location.prefix}"
        self.timeout = timeout
        self.scrub_rate = scrub_rate  # bytes re-hashed per second (0: no scrub)
        self._scrub_after = ""
        self._scrubbed_at = time.monotonic()
        self._store = location.open(timeout)
        self._stats = StoreStats(used_bytes=0, free_bytes=UNBOUNDED, chunk_count=0)
        self._counted_at = -COUNT_EVERY
        self._counting: asyncio.Task[None] | None = None
        self._bucket_checked = False

    def __repr__(self) -> str:
        return f"AsyncS3Store({self.location!r})"

    async def aclose(self) -> None:
        """Nothing to release: the client's pool goes with the object."""

    async def __aenter__(self) -> AsyncS3Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _bounded(self, call: Any, name: str | None = None) -> Any:
        try:
            with _store_errors(self.location, name):
                async with asyncio.timeout(self.timeout):
                    return await call
        except TimeoutError:
            raise StoreUnavailable(f"The object store {self.location.endpoint} "
                                   "timed out.") from None

    async def put(self, name: str, data: bytes) -> None:
        """Store a chunk (the store checks the signed payload hash).

        Always one PUT, even when the object is there already: asking first would cost every
        new chunk a round trip more, and would answer a chunk someone else stored faster than
        a new one (SECURITY.md: storing a chunk must not tell whether anyone has it). Writing
        the same bytes under the same key again changes nothing."""
        if len(data) >= 256 * 1024:
            await asyncio.to_thread(_check_put, name, data)
        else:
            _check_put(name, data)
        await self._bounded(obstore.put_async(self._store, self.location.key(name), data,
                                              use_multipart=False), name)

    async def get(self, name: str) -> bytes:
        check_name(name)
        result = await self._bounded(obstore.get_async(self._store, self.location.key(name)),
                                     name)
        data = await self._bounded(result.bytes_async(), name)
        return await asyncio.to_thread(_verified, name, memoryview(data))

    async def stream(self, name: str, start: int = 0,
                     end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` in blocks of about 1 MiB; unverified, the caller checks."""
        size = await self.head(name)
        if size is None:
            raise ChunkNotFound(f"Chunk {name} is not in the object store.")
        check_range(size, start, end)
        stop = size if end is None else min(end, size)
        if stop <= start:
            return
        result = await self._bounded(obstore.get_async(
            self._store, self.location.key(name),
            options=_range_options(start, stop)), name)  # type: ignore[arg-type]
        parts = result.stream(min_chunk_size=256 * 1024)
        while True:
            part = await self._bounded(anext(parts, None), name)
            if part is None:
                break
            for block in _blocks(part, BLOCK):
                yield block

    async def head(self, name: str) -> int | None:
        check_name(name)
        try:
            meta = await self._bounded(obstore.head_async(self._store,
                                                          self.location.key(name)), name)
        except ChunkNotFound:
            return None
        return int(meta["size"])

    async def has(self, name: str) -> bool:
        return await self.head(name) is not None

    async def delete(self, name: str, before: float | None = None) -> None:
        """An object store has no delete that expires: ``before`` cannot be passed on, so one
        the store took after this call gave up is not fenced (docs/DESIGN.md, Object store)."""
        check_name(name)
        with contextlib.suppress(ChunkNotFound):
            await self._bounded(obstore.delete_async(self._store, self.location.key(name)), name)

    async def stat(self) -> StoreStats:
        """Used bytes and the object count, by listing the whole bucket (exact, not cheap)."""
        return await asyncio.to_thread(S3ChunkStore(self.location, self.timeout * 6).stat)

    async def probe(self) -> StoreStats:
        """What the API's health probe asks every few seconds: one cheap listing proves the
        bucket answers; used bytes and the object count come from a background ``stat``,
        redone every ``COUNT_EVERY`` seconds, since counting means listing everything."""
        await self._check_bucket()
        stream = obstore.list(self._store, self.location.chunks_prefix, chunk_size=1)
        await self._bounded(anext(stream, None))
        now = time.monotonic()
        if self._counting is None and now - self._counted_at >= COUNT_EVERY:
            self._counted_at = now
            self._counting = asyncio.create_task(self._count())
        return self._stats

    async def _count(self) -> None:
        try:
            self._stats = await self.stat()
        except StoreError as exc:
            log.warning("could not count the objects of %s: %s", self.url, exc.message)
        finally:
            self._counting = None

    async def list(self, after: str = "", limit: int = 1000) -> list[str]:
        offset = self.location.list_offset(after)
        stream = obstore.list(self._store, self.location.chunks_prefix, offset=offset,
                              chunk_size=min(limit, 1000))
        names: list[str] = []
        while len(names) < limit:
            batch = await self._bounded(anext(stream, None))
            if batch is None:
                break
            names.extend(_names(batch))
        return sorted(n for n in names if n > after)[:limit]

    async def list_aged(self, after: str, limit: int,
                        min_age: float) -> tuple[builtins.list[str], str | None]:
        """A page of chunks stored at least ``min_age`` seconds ago (by the store's clock,
        as a node uses its own), and the name the next page starts after (None: no more)."""
        stream = obstore.list(self._store, self.location.chunks_prefix,
                              offset=self.location.list_offset(after),
                              chunk_size=min(limit, 1000))
        metas: builtins.list[Any] = []
        while len(metas) < limit:
            batch = await self._bounded(anext(stream, None))
            if batch is None:
                break
            metas.extend(batch)
        metas = sorted(metas, key=lambda m: str(m["path"]))[:limit]
        cutoff = datetime.now(UTC) - timedelta(seconds=min_age)
        names = [str(m["path"]).rsplit("/", 1)[-1] for m in metas
                 if m["last_modified"] <= cutoff]
        following = str(metas[-1]["path"]).rsplit("/", 1)[-1] if len(metas) == limit else None
        return names, following

    async def quarantined(self) -> QuarantineList:
        """Scrub, then what it set aside: ``[{file, chunk}]`` as a node's ``/quarantine``.

        A node re-hashes its disk in the background; an object store cannot be asked to, so
        each call (the API's audit loop makes one per pass) re-reads the next chunks in key
        order, up to ``scrub_rate`` bytes per second since the last call, and moves a copy that
        does not hash to its name under ``quarantine/``, where the API finds and records it.
        """
        if self.scrub_rate > 0:
            await self._scrub_step()
        stream = obstore.list(self._store, f"{self.location.prefix}quarantine", chunk_size=100)
        batch = await self._bounded(anext(stream, None))
        return [{"file": str(m["path"]), "chunk": str(m["path"]).rsplit("/", 1)[-1]}
                for m in batch or []][:100]

    async def release_quarantined(self, file: str) -> None:
        """Acknowledge a quarantined copy once its replica is recorded as bad: delete it."""
        if not file.startswith(f"{self.location.prefix}quarantine/"):
            raise InvalidInput(f"{file} is not in the quarantine.")
        with contextlib.suppress(ChunkNotFound):
            await self._bounded(obstore.delete_async(self._store, file))

    async def _scrub_step(self) -> None:
        now = time.monotonic()
        budget = min(self.scrub_rate * (now - self._scrubbed_at), self.scrub_rate * 60)
        self._scrubbed_at = now
        while budget > 0:
            names = await self.list(self._scrub_after, 50)
            if not names:
                self._scrub_after = ""  # a full pass is done: start again from the top
                return
            for name in names:
                self._scrub_after = name
                try:
                    data = await self.get(name)
                    budget -= len(data)
                except CorruptChunk:
                    await self._quarantine(name)
                except ChunkNotFound:
                    continue  # deleted since the listing

    async def _quarantine(self, name: str) -> None:
        target = f"{self.location.prefix}quarantine/{name}"
        await self._bounded(obstore.rename_async(self._store, self.location.key(name), target),
                            name)

    async def _check_bucket(self) -> None:
        """Once: make sure the bucket exists, creating it by a first write where the store lets
        its admin do that (SeaweedFS, MinIO with auto-create). An API started on its own (not by
        ``server cluster``, which checks at start) would otherwise wait for a bucket nobody
        makes; on other stores the error says to create it, and the next probe asks again."""
        if not self._bucket_checked:
            await asyncio.to_thread(S3ChunkStore(self.location, self.timeout).check_bucket)
            self._bucket_checked = True

    async def health(self) -> dict[str, Any]:
        """``{status, free_bytes}``: one cheap listing proves the bucket answers."""
        await self._check_bucket()
        stream = obstore.list(self._store, self.location.chunks_prefix, chunk_size=1)
        await self._bounded(anext(stream, None))
        return {"status": "ok", "free_bytes": UNBOUNDED}


def is_object_store(url: str) -> bool:
    """A node URL that names a bucket (``s3://...``) rather than a storage node."""
    return url.startswith("s3://")


def location_from(url: str, credentials_file: str | os.PathLike[str] | None) -> S3Location:
    """The bucket named by ``url``, with credentials from ``credentials_file`` when given,
    else from the AWS environment variables."""
    creds = load_credentials_file(os.fspath(credentials_file)) if credentials_file else None
    return S3Location.parse(url, creds)
