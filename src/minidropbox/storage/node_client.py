"""Clients of a storage node's HTTP API (docs/PROTOCOL.md, "Storage node").

``NodeClient`` is the synchronous ``ChunkStore`` adapter (tools, backup, the contract suite);
``AsyncNodeClient`` is what the API uses to write each chunk to R nodes at once. Both map the
node's answers onto the exception tree and verify what they read:

    404 → ChunkNotFound     400 → HashMismatch (or InvalidInput)     413 → PayloadTooLarge
    416 → RangeNotSatisfiable     507 → StoreFull
    401/403, other 5xx, timeouts, refused or dropped connections → StoreUnavailable

A node that refuses the cluster secret is "unavailable" rather than "unauthorized": the fault
is the cluster's configuration, never the user's, and the caller must fall over to another node.
So is a success answer that cannot be read (not JSON, a field missing): every fault of the node
is a ``StoreError``, and anything else that escapes is a bug here, not the node's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import anyio
import httpx

from minidropbox.core import chunk_batch
from minidropbox.core.errors import (
    HashMismatch,
    InvalidInput,
    MiniDropboxError,
    PayloadTooLarge,
    RangeNotSatisfiable,
)
from minidropbox.storage.base import (
    DELETE_BEFORE_HEADER,
    ChunkNotFound,
    CorruptChunk,
    DeleteTooLate,
    DiskFault,
    DiskIOError,
    DiskReadOnly,
    StoreFull,
    StoreStats,
    StoreUnavailable,
)
from minidropbox.storage.disk import BLOCK, check_name, check_range
from minidropbox.storage.node_fetch import FetchPool, ReceiveBuffers
from minidropbox.storage.node_http import NodeConnectError, NodePool, NodeTransportError
from minidropbox.storage.node_http import Response as NodeResponse

AnyResponse = httpx.Response | NodeResponse

OFFLOAD_HASH_BYTES = 256 * 1024
PUTS_AT_ONCE = 8  # single PUTs in flight for a batch to a node that takes no batch writes


DISK_FAULTS: dict[str, type[DiskFault]] = {c.code: c for c in (DiskReadOnly, DiskIOError)}


def error_for(response: AnyResponse, url: str) -> MiniDropboxError:
    """The exception for a node's error answer (its body must have been read)."""
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        code, message = "", f"Storage node {url} answered {response.status_code}."
    status = response.status_code
    if status == 404:
        return ChunkNotFound(message)
    if status == 400:
        return HashMismatch(message) if code == HashMismatch.code else InvalidInput(message)
    if status == 413:
        return PayloadTooLarge(message)
    if status == 416:
        return RangeNotSatisfiable(message)
    if status == 412 and code == DeleteTooLate.code:
        return DeleteTooLate(f"Storage node {url}: {message}")
    if status == 507:
        return StoreFull(f"Storage node {url} is full.")
    if status in (401, 403):
        return StoreUnavailable(f"Storage node {url} refused the cluster secret.")
    if status == 503 and code in DISK_FAULTS:
        return DISK_FAULTS[code](f"Storage node {url}: {message}")
    return StoreUnavailable(f"Storage node {url} answered {status}: {message}")


@contextlib.contextmanager
def transport_errors(url: str) -> Iterator[None]:
    """Turn network failures (refused, reset, timed out) into ``StoreUnavailable``."""
    try:
        yield
    except httpx.TimeoutException:
        raise StoreUnavailable(f"Storage node {url} timed out.") from None
    except httpx.TransportError as exc:
        raise StoreUnavailable(f"Storage node {url} is unreachable "
                               f"({type(exc).__name__}).") from None


def check_intact(name: str, data: bytes | bytearray) -> None:
    if hashlib.sha256(data).hexdigest() != name:
        raise CorruptChunk(f"Chunk {name} is corrupt on the storage node.")


def verified(name: str, data: bytes) -> bytes:
    check_intact(name, data)
    return data


def range_header(start: int, end: int | None) -> dict[str, str]:
    if start == 0 and end is None:
        return {}
    return {"Range": f"bytes={start}-{'' if end is None else end - 1}"}


def total_size(response: AnyResponse) -> int | None:
    """The chunk size named by a ``Content-Range`` header (``bytes a-b/size`` or ``*/size``)."""
    _, _, size = response.headers.get("content-range", "").rpartition("/")
    return int(size) if size.isdigit() else None


@contextlib.contextmanager
def malformed_answer(url: str) -> Iterator[None]:
    """A success answer the node's protocol does not allow is the node's fault."""
    try:
        yield
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StoreUnavailable(f"Storage node {url} sent a malformed answer "
                               f"({type(exc).__name__}).") from None


def _stats(response: AnyResponse, url: str) -> StoreStats:
    with malformed_answer(url):
        body = response.json()
        fault, node_id, public_url = (body.get(k) for k in ("fault", "node_id", "public_url"))
        return StoreStats(used_bytes=int(body["used_bytes"]),
                          free_bytes=int(body["free_bytes"]),
                          chunk_count=int(body["chunk_count"]),
                          fault=str(fault) if fault else None,
                          node_id=str(node_id) if node_id else None,
                          public_url=str(public_url) if public_url else None)


def _names(response: AnyResponse, url: str) -> list[str]:
    with malformed_answer(url):
        names = response.json()["chunks"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise TypeError("chunks is not a list of names")
        return names


def _length(response: AnyResponse, url: str) -> int:
    with malformed_answer(url):
        return int(response.headers["content-length"])


class _NodeBase:
    def __init__(self, url: str, secret: str, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._auth = {"Authorization": f"Bearer {secret}"}

    def _chunk_url(self, name: str) -> str:
        return f"{self.url}/chunks/{check_name(name)}"

    def __repr__(self) -> str:  # never the secret
        return f"{type(self).__name__}({self.url!r})"


class NodeClient(_NodeBase):
    """A ``ChunkStore`` backed by one storage node (blocking httpx with keep-alive).

    ``timeout`` bounds each network step (connect, each read, each write), so a hung node
    raises ``StoreUnavailable`` instead of blocking forever.
    """

    def __init__(self, url: str, secret: str, timeout: float = 5.0) -> None:
        super().__init__(url, secret, timeout)
        self._client = httpx.Client(timeout=timeout, headers=self._auth)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        with transport_errors(self.url):
            response = self._client.request(method, url, **kwargs)
        if response.status_code >= 400:
            raise error_for(response, self.url)
        return response

    def put(self, name: str, data: bytes) -> None:
        self._request("PUT", self._chunk_url(name), content=data)

    def get(self, name: str) -> bytes:
        return verified(name, self._request("GET", self._chunk_url(name)).content)

    def size(self, name: str) -> int | None:
        """The chunk's size, or None when the node does not have it."""
        try:
            response = self._request("HEAD", self._chunk_url(name))
        except ChunkNotFound:
            return None
        return _length(response, self.url)

    def has(self, name: str) -> bool:
        return self.size(name) is not None

    def delete(self, name: str) -> None:
        self._request("DELETE", self._chunk_url(name))

    def list(self, after: str = "", limit: int = 1000) -> list[str]:
        return _names(self._request("GET", f"{self.url}/chunks",
                                    params={"after": after, "limit": limit}), self.url)

    def stat(self) -> StoreStats:
        return _stats(self._request("GET", f"{self.url}/healthz"), self.url)

    def iter_range(self, name: str, start: int = 0, end: int | None = None,
                   block: int = BLOCK) -> Iterator[bytes]:
        """Bytes ``[start, end)`` as they arrive, unverified (the caller checks what it needs)."""
        if end is not None and end <= start:
            size = self.size(name)
            if size is None:
                raise ChunkNotFound(f"Chunk {name} is not on this node.")
            check_range(size, start, end)
            return iter(())
        return self._stream(name, start, end, block)

    def _stream(self, name: str, start: int, end: int | None, block: int) -> Iterator[bytes]:
        with transport_errors(self.url), self._client.stream(
                "GET", self._chunk_url(name), headers=range_header(start, end)) as response:
            if response.status_code >= 400:
                response.read()
                if response.status_code == 416 and total_size(response) == start == (end or start):
                    return  # an empty range at the very end of the chunk
                raise error_for(response, self.url)
            size = total_size(response)
            if size is not None:
                check_range(size, start, end)
            yield from response.iter_bytes(block)


class AsyncNodeClient(_NodeBase):
    """The API's handle on one storage node, over a lean keep-alive pool (``node_http``).

    Every call except ``stream`` must finish within ``timeout`` seconds as a whole, so a hung or
    trickling node raises ``StoreUnavailable`` in time for the caller to pick another;
    ``stream`` bounds each step (connecting and the answer's head, then each read) instead,
    since its consumer sets the pace. Each node client pools its own connections to its node.
    """

    def __init__(self, url: str, secret: str, timeout: float = 5.0,
                 buffers: ReceiveBuffers | None = None) -> None:
        super().__init__(url, secret, timeout)
        self._pool = NodePool(self.url)
        # Whole-chunk GETs (every download's bytes) are received in place: node_fetch.py.
        # ``buffers`` may be shared by the clients of every node of a cluster.
        self._fetch = (FetchPool(self.url, buffers) if self.url.startswith("http://")
                       else None)
        self._base = len(self.url)
        self.batch_writes = True  # False once the node answered that it takes no batch
        self.batch_reads = True

    async def aclose(self) -> None:
        await self._pool.aclose()
        if self._fetch is not None:
            await self._fetch.aclose()

    async def __aenter__(self) -> AsyncNodeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _target(self, url: str) -> str:
        return url[self._base:]

    async def _request(self, method: str, url: str, body: bytes | memoryview | None = None,
                       params: dict[str, Any] | None = None,
                       accept: tuple[int, ...] = (),
                       headers: dict[str, str] | None = None) -> NodeResponse:
        target = self._target(url)
        if params:
            target += "?" + urlencode(params)
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._pool.request(
                    method, target, {**self._auth, **headers} if headers else self._auth, body)
        except TimeoutError:
            raise StoreUnavailable(f"Storage node {self.url} timed out.") from None
        except NodeTransportError as exc:
            raise _unreachable(self.url, exc) from None
        if response.status_code >= 400 and response.status_code not in accept:
            raise error_for(response, self.url)
        return response

    async def put(self, name: str, data: bytes) -> None:
        """Store a chunk durably on the node (the node verifies the hash again)."""
        await self._request("PUT", self._chunk_url(name), body=data)

    async def put_many(self, items: Sequence[tuple[str, bytes]]) -> list[bool | HashMismatch]:
        """Store several chunks with one request (the node's batch write, one flush for all;
        the caller keeps within ``core/chunk_batch``'s bounds). Per chunk, in order: True
        (created), False (it was there) or the ``HashMismatch`` the node found; a fault of the
        whole request raises as ``put`` does."""
        for name, _ in items:
            check_name(name)
        if not self.batch_writes:
            return await self._put_each(items)
        response = await self._request("POST", f"{self.url}/chunks/batch",
                                       body=chunk_batch.encode(items), accept=(405,))
        if response.status_code == 405:
            # A node from before batch writes (/chunks/{name} takes no POST): during a
            # rolling upgrade it is not a faulty node; send it one chunk at a time.
            self.batch_writes = False
            return await self._put_each(items)
        results: list[bool | HashMismatch] = []
        with malformed_answer(self.url):
            answers = response.json()["chunks"]
            if len(answers) != len(items):
                raise ValueError("one answer per chunk")
            for answer in answers:
                if "error" in answer:
                    if answer["error"]["code"] != HashMismatch.code:
                        raise ValueError("only a hash mismatch fails one chunk")
                    results.append(HashMismatch(str(answer["error"]["message"])))
                else:
                    results.append(bool(answer["created"]))
        return results

    async def get_many(self, names: Sequence[str]) -> dict[str, bytes]:
        """The chunks of ``names`` the node has, by name, in one request (its batch read;
        the caller keeps within ``core/chunk_batch``'s bounds), unverified: the caller
        checks each against its name. A chunk the node lacks is left out."""
        for name in names:
            check_name(name)
        if self.batch_reads:
            response = await self._request("POST", f"{self.url}/chunks/read",
                                           body=chunk_batch.encode_names(names), accept=(405,))
            if response.status_code != 405:
                try:
                    found = chunk_batch.split(response.content, chunk_batch.MAX_BATCH_BYTES,
                                              allow_empty=True)
                except MiniDropboxError:
                    raise StoreUnavailable(f"Storage node {self.url} sent a malformed "
                                           "answer to a batch read.") from None
                wanted = set(names)
                return {name: bytes(data) for name, data in found if name in wanted}
            self.batch_reads = False  # a node from before batch reads: GET each
        out: dict[str, bytes] = {}
        for name in names:
            try:
                out[name] = bytes(await self.get(name))
            except (ChunkNotFound, CorruptChunk):
                continue
        return out

    async def _put_each(self, items: Sequence[tuple[str, bytes]]) -> list[bool | HashMismatch]:
        """``put_many`` as single PUTs, a few at once (True: stored, new or not)."""
        gate = asyncio.Semaphore(PUTS_AT_ONCE)

        async def one(name: str, data: bytes) -> bool | HashMismatch:
            async with gate:
                try:
                    await self.put(name, data)
                except HashMismatch as exc:
                    return exc
                return True

        return list(await asyncio.gather(*(one(n, d) for n, d in items)))

    async def get(self, name: str) -> bytes | bytearray:
        """The chunk's bytes, verified against its name (``CorruptChunk`` otherwise): from a
        plain-HTTP node a ``bytearray`` the answer was received into, nothing copied."""
        data = await self._get_whole(self._chunk_url(name))
        if len(data) < OFFLOAD_HASH_BYTES:
            check_intact(name, data)
        else:
            # hashlib releases the GIL: hashing a big chunk in a thread keeps the event loop
            # serving other requests meanwhile.
            await anyio.to_thread.run_sync(check_intact, name, data)
        return data

    async def _get_whole(self, url: str) -> bytes | bytearray:
        if self._fetch is None:
            return (await self._request("GET", url)).content
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._fetch.get(self._target(url), self._auth)
        except TimeoutError:
            raise StoreUnavailable(f"Storage node {self.url} timed out.") from None
        except NodeTransportError as exc:
            raise _unreachable(self.url, exc) from None
        if response.status_code >= 400:
            raise error_for(response, self.url)
        return response.content

    async def stream(self, name: str, start: int = 0,
                     end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` in blocks of up to 1 MiB; unverified, the caller checks.

        A consumer that may stop early should wrap this in ``contextlib.aclosing`` so the
        connection is released at once (it is closed: only a fully read answer is reused).
        """
        if end is not None and end <= start:
            size = await self.head(name)
            if size is None:
                raise ChunkNotFound(f"Chunk {name} is not on this node.")
            check_range(size, start, end)
            return
        target = self._target(self._chunk_url(name))
        headers = {**self._auth, **range_header(start, end)}
        try:
            async with contextlib.AsyncExitStack() as stack:
                async with asyncio.timeout(self.timeout):
                    response, chunks = await stack.enter_async_context(
                        self._pool.open("GET", target, headers))
                    if response.status_code >= 400:
                        response.content = b"".join([p async for p in chunks(BLOCK)])
                if response.status_code >= 400:
                    if (response.status_code == 416
                            and total_size(response) == start == (end or start)):
                        return  # an empty range at the very end of the chunk
                    raise error_for(response, self.url)
                size = total_size(response)
                if size is not None:
                    check_range(size, start, end)
                blocks = chunks(BLOCK)
                while True:
                    async with asyncio.timeout(self.timeout):
                        block = await anext(blocks, None)
                    if block is None:
                        break
                    yield block
        except TimeoutError:
            raise StoreUnavailable(f"Storage node {self.url} timed out.") from None
        except NodeTransportError as exc:
            raise _unreachable(self.url, exc) from None

    async def head(self, name: str) -> int | None:
        """The chunk's size, or None when the node does not have it."""
        try:
            response = await self._request("HEAD", self._chunk_url(name))
        except ChunkNotFound:
            return None
        return _length(response, self.url)

    async def has(self, name: str) -> bool:
        return await self.head(name) is not None

    async def quarantined(self) -> list[dict[str, str]]:
        """Chunks the node's scrub found corrupt and set aside: ``[{file, chunk}]``."""
        response = await self._request("GET", f"{self.url}/quarantine")
        with malformed_answer(self.url):
            found = [{"file": str(e["file"]), "chunk": str(e["chunk"])}
                     for e in response.json()["chunks"]]
        return found

    async def release_quarantined(self, file: str) -> None:
        """Acknowledge a quarantined file once its replica is recorded as bad."""
        await self._request("DELETE", f"{self.url}/quarantine/{quote(file)}")

    async def delete(self, name: str, before: float | None = None) -> None:
        """Delete a copy, telling the node until when it may (``DELETE_BEFORE_HEADER``): a
        paused node that reads the request after that refuses it instead of deleting behind
        the deletion fence's back, and a call that failed returns only once that time has
        passed, so its caller's fence outlives it. The node gets ``DELETE_SLACK`` timeouts
        (within ``before``): a loaded node that is merely slow still deletes, rather than
        leave an orphan for the sweep; only a failed call waits out the slack."""
        until = time.time() + self.timeout * DELETE_SLACK
        if before is not None:
            until = min(until, before)
        try:
            await self._request("DELETE", self._chunk_url(name),
                                headers={DELETE_BEFORE_HEADER: f"{until:.3f}"})
        except NodeNotReached:
            raise  # never sent: nothing to outlive
        except StoreUnavailable:
            # Perhaps read by the node all the same: past ``until`` it can only refuse it.
            await asyncio.sleep(max(0.0, until - time.time()))
            raise

    async def list_aged(self, after: str, limit: int,
                        min_age: float) -> tuple[list[str], str | None]:
        """A page of chunks written at least ``min_age`` seconds ago (by the node's clock),
        and the name the next page starts after (None: no more)."""
        response = await self._request("GET", f"{self.url}/chunks", params={
            "after": after, "limit": limit, "min_age": min_age})
        names = _names(response, self.url)
        with malformed_answer(self.url):
            following = response.json()["next"]
            if following is not None and not isinstance(following, str):
                raise TypeError("next is not a name")
        return names, following

    async def list(self, after: str = "", limit: int = 1000) -> list[str]:
        return _names(await self._request("GET", f"{self.url}/chunks",
                                          params={"after": after, "limit": limit}), self.url)

    async def stat(self) -> StoreStats:
        """Used and free bytes and the chunk count, as the node's ``/healthz`` reports them."""
        return _stats(await self._request("GET", f"{self.url}/healthz"), self.url)


DELETE_SLACK = 3  # a delete's deadline, in timeouts of the call that sends it


class NodeNotReached(StoreUnavailable):
    """No connection to the node could be made: the request never reached it."""


def _unreachable(url: str, exc: NodeTransportError) -> StoreUnavailable:
    kind = NodeNotReached if isinstance(exc, NodeConnectError) else StoreUnavailable
    return kind(f"Storage node {url} is unreachable ({exc.kind}).")
