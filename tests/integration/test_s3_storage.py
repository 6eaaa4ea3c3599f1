"""Mini-Dropbox with its chunks in a real S3 object store (SeaweedFS, tests/seaweedfs.py):
uploads, downloads and Range reads, the CLI and a sync client, garbage collection, the scrub
that finds a rotten object, and a backup restored into a new bucket.

The bucket stands in for the storage nodes as one "node" named ``s3`` with R = 1: the object
store keeps its own copies.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import obstore
import pytest

from minidropbox.storage.s3 import AsyncS3Store, S3Location
from tests.conftest import PASSWORD, bearer, signup_and_login
from tests.harness import BIN, ServerProcess, start_api
from tests.integration.storage_faults import (
    MiB,
    download,
    hashes_of,
    make_admin,
    status,
    upload,
    wait_until,
)
from tests.seaweedfs import SeaweedFS

FAST = {"health_interval": 0.3, "node_down_after": 3, "node_timeout": 5,
        "repair_interval": 0.5, "audit_rate": 500, "replicas": 1}


@dataclass
class S3Cluster:
    """An API whose only storage "node" is a fresh bucket (what ``make_admin`` needs)."""

    tmp: Path
    api: ServerProcess
    location: S3Location
    url_of_bucket: str
    admin: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.api.url

    def objects(self) -> dict[str, bytes]:
        """Every chunk object in the bucket, by chunk name."""
        store = self.location.open(30.0)
        return {str(m["path"]).rsplit("/", 1)[-1]: bytes(obstore.get(store, m["path"]).bytes())
                for batch in obstore.list(store, self.location.chunks_prefix) for m in batch}

    def overwrite(self, name: str, data: bytes) -> None:
        obstore.put(self.location.open(30.0), self.location.key(name), data)


def start_s3_cluster(tmp: Path, seaweed: SeaweedFS, **env: object) -> S3Cluster:
    bucket = f"mdb-{secrets.token_hex(4)}"
    seaweed.create_bucket(bucket)
    url = seaweed.url(bucket, "cluster")
    api = start_api(tmp, nodes=[f"s3={url}"],
                    env={"cluster_secret": "s3-cluster-" + secrets.token_hex(8), **FAST,
                         "s3_credentials_file": seaweed.credentials_file(), **env})
    return S3Cluster(tmp, api, S3Location.parse(url, seaweed.credentials), url)


@pytest.fixture(scope="module")
def s3_cluster(tmp_path_factory: pytest.TempPathFactory,
               seaweed: SeaweedFS) -> Iterator[S3Cluster]:
    """One API over one bucket for the module (each test is its own user)."""
    cluster = start_s3_cluster(tmp_path_factory.mktemp("s3"), seaweed, gc_grace_seconds=1,
                               gc_interval=0, s3_scrub_rate=64 * MiB)
    try:
        with httpx.Client(base_url=cluster.url, timeout=60) as client:
            cluster.admin = make_admin(cluster, client, "root")
        yield cluster
    finally:
        cluster.api.stop()


def test_files_live_in_the_bucket_and_read_back_whole_and_in_ranges(
        s3_cluster: S3Cluster) -> None:
    rng = random.Random(3)
    big, small = rng.randbytes(5 * MiB + 17), b"hello object store\n"
    with httpx.Client(base_url=s3_cluster.url, timeout=60) as client:
        auth = bearer(signup_and_login(client, "alice"))
        for path, data in (("/big.bin", big), ("/small.txt", small)):
            r = upload(client, auth, path, data)
            assert r.status_code == 201, r.text
        assert download(client, auth, "/big.bin") == big
        assert download(client, auth, "/small.txt") == small
        r = client.get("/api/v1/files/content", headers={**auth, "Range": "bytes=1048570-2097160"},
                       params={"path": "/big.bin"})
        assert r.status_code == 206 and r.content == big[1048570:2097161]
        # One copy of every chunk, in the bucket, under its own name, intact.
        stored = s3_cluster.objects()
        assert set(hashes_of(big) + hashes_of(small)) <= set(stored)
        assert all(hashlib.sha256(v).hexdigest() == k for k, v in stored.items())
        admin = s3_cluster.admin
        body = status(client, admin)
        assert body["under_replicated"] == 0 and body["corrupt_replicas"] == 0
        nodes = client.get("/api/v1/admin/nodes", headers=admin).json()["nodes"]
        assert [(n["name"], n["state"]) for n in nodes] == [("s3", "up")]


def test_cli_put_get_and_a_sync_client(s3_cluster: S3Cluster, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINIDROPBOX_")}
    env.update({"XDG_CONFIG_HOME": str(tmp_path / "config"), "MINIDROPBOX_SERVER": s3_cluster.url})

    def cli(*args: str | Path, stdin: str | None = None) -> str:
        proc = subprocess.run([str(BIN), *map(str, args)], env=env, input=stdin, text=True,
                              capture_output=True, timeout=120)
        assert proc.returncode == 0, f"{args}: {proc.stderr}"
        return proc.stdout

    cli("signup", "bob", "--password-stdin", stdin=PASSWORD + "\n")
    cli("login", "bob", "--password-stdin", stdin=PASSWORD + "\n")
    source = tmp_path / "src"
    (source / "docs").mkdir(parents=True)
    files = {f"docs/{i}.txt": random.Random(i).randbytes(1000 * i) for i in range(1, 6)}
    files["photo.raw"] = random.Random(9).randbytes(3 * MiB)
    for rel, data in files.items():
        (source / rel).write_bytes(data)
    cli("put", source / "docs", source / "photo.raw", "/")
    cli("get", "/docs", tmp_path / "back")
    for i in range(1, 6):
        assert (tmp_path / "back" / f"{i}.txt").read_bytes() == files[f"docs/{i}.txt"]
    # A sync client brings the whole tree down from the object store, byte for byte.
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    cli("sync", mirror, "--once")
    for rel, data in files.items():
        assert (mirror / rel).read_bytes() == data


def test_gc_deletes_the_objects_no_version_references(s3_cluster: S3Cluster) -> None:
    rng = random.Random(5)
    doomed, kept = rng.randbytes(2 * MiB), rng.randbytes(2 * MiB)
    with httpx.Client(base_url=s3_cluster.url, timeout=60) as client:
        auth = bearer(signup_and_login(client, "carol"))
        admin = s3_cluster.admin
        for path, data in (("/doomed", doomed), ("/kept", kept)):
            assert upload(client, auth, path, data).status_code == 201
        assert client.delete("/api/v1/files", headers=auth,
                             params={"path": "/doomed"}).status_code == 200
        assert client.delete("/api/v1/trash", headers=auth,
                             params={"path": "/doomed"}).status_code == 200
        time.sleep(1.2)  # past the grace period
        r = client.post("/api/v1/admin/gc", headers=admin, json={})
        assert r.status_code == 200 and r.json()["collected"] >= len(set(hashes_of(doomed)))
        stored = set(s3_cluster.objects())
        assert not set(hashes_of(doomed)) & stored
        assert set(hashes_of(kept)) <= stored
        assert download(client, auth, "/kept") == kept


def test_scrub_finds_a_rotten_object_and_a_new_upload_heals_it(s3_cluster: S3Cluster) -> None:
    data = random.Random(7).randbytes(300_000)  # one chunk
    (name,) = hashes_of(data)
    with httpx.Client(base_url=s3_cluster.url, timeout=60) as client:
        auth = bearer(signup_and_login(client, "dave"))
        admin = s3_cluster.admin
        assert upload(client, auth, "/f", data).status_code == 201
        rotten = bytearray(data)
        rotten[1000] ^= 0x10
        s3_cluster.overwrite(name, bytes(rotten))
        wait_until(lambda: status(client, admin)["corrupt_replicas"] == 1, 60,
                   "the scrub to mark the copy corrupt")
        assert name not in s3_cluster.objects()  # set aside under quarantine/
        # A download cannot serve bad bytes; the owner's next upload sends the chunk again.
        r = client.get("/api/v1/files/content", headers=auth, params={"path": "/f"})
        assert r.status_code >= 500 or r.content != bytes(rotten)
        r = client.post("/api/v1/chunks/missing", headers=auth, json={"hashes": [name]})
        assert r.json()["missing"] == [name]
        assert upload(client, auth, "/f2", data).status_code == 201
        assert download(client, auth, "/f") == data
        assert s3_cluster.objects()[name] == data


def test_backup_and_restore_into_a_new_bucket(s3_cluster: S3Cluster, tmp_path: Path,
                                              seaweed: SeaweedFS) -> None:
    rng = random.Random(11)
    files = {"/a.bin": rng.randbytes(MiB + 5), "/b.txt": b"restored from a backup\n"}
    repo = tmp_path / "repo"
    with httpx.Client(base_url=s3_cluster.url, timeout=60) as client:
        auth = bearer(signup_and_login(client, "erin"))
        for path, data in files.items():
            assert upload(client, auth, path, data).status_code == 201
    backup = subprocess.run([str(BIN), "backup", "now", "--repo", str(repo)],
                            env=s3_cluster.api.env, capture_output=True, text=True, timeout=120)
    assert backup.returncode == 0, backup.stderr
    bucket = f"restored-{secrets.token_hex(4)}"
    seaweed.create_bucket(bucket)
    target_url = seaweed.url(bucket, "r")
    restored = subprocess.run([str(BIN), "backup", "restore", "latest", "--repo", str(repo),
                               "--to", str(tmp_path / "restored"), "--s3-url", target_url],
                              env={**os.environ, "MINIDROPBOX_S3_CREDENTIALS_FILE":
                                   str(seaweed.credentials_file())}, capture_output=True,
                              text=True, timeout=120)
    assert restored.returncode == 0, restored.stderr
    assert "--storage s3" in restored.stdout
    second = start_api(tmp_path / "two", nodes=[f"s3={target_url}"],
                       env={"cluster_secret": "restored-" + secrets.token_hex(8), **FAST,
                            "s3_credentials_file": seaweed.credentials_file(),
                            "data_dir": tmp_path / "restored" / "api"})
    try:
        with httpx.Client(base_url=second.url, timeout=60) as client:
            r = client.post("/api/v1/auth/login", json={"username": "erin",
                                                        "password": PASSWORD})
            assert r.status_code == 200, r.text
            for path, data in files.items():
                assert download(client, bearer(r.json()), path) == data
    finally:
        second.stop()


def test_the_orphan_sweep_lists_a_bucket_by_age(seaweed: SeaweedFS) -> None:
    location = S3Location.parse(seaweed.url("contract", f"aged{secrets.token_hex(4)}"),
                                seaweed.credentials)
    store = AsyncS3Store(location, timeout=30)
    chunks = [random.Random(i).randbytes(100) for i in range(5)]
    names = sorted(hashlib.sha256(c).hexdigest() for c in chunks)

    async def run() -> None:
        for data in chunks:
            await store.put(hashlib.sha256(data).hexdigest(), data)
        assert await store.list_aged("", 10, 0) == (names, None)
        assert await store.list_aged("", 3, 0) == (names[:3], names[2])
        assert await store.list_aged(names[2], 3, 0) == (names[3:], None)
        # Just written: younger than any grace period, so never an orphan candidate yet.
        assert await store.list_aged("", 10, 3600) == ([], None)

    asyncio.run(run())


def test_a_put_always_writes_even_a_stored_chunk(seaweed: SeaweedFS) -> None:
    """The API's put never asks first: a stored chunk costs the same PUT as a new one (no
    round trip more for new chunks, no faster answer that tells a chunk exists)."""
    location = S3Location.parse(seaweed.url("contract", f"again{secrets.token_hex(4)}"),
                                seaweed.credentials)
    store = AsyncS3Store(location, timeout=30)
    data = random.Random(3).randbytes(1000)
    name = hashlib.sha256(data).hexdigest()
    raw = location.open(30.0)

    async def run() -> None:
        await store.put(name, data)
        first = obstore.head(raw, location.key(name))["last_modified"]
        await asyncio.sleep(1.5)  # the store's clock counts whole seconds
        await store.put(name, data)
        second = obstore.head(raw, location.key(name))["last_modified"]
        assert second > first, (first, second)
        assert await store.get(name) == data

    asyncio.run(run())


def test_an_api_on_its_own_creates_a_missing_bucket(tmp_path: Path, seaweed: SeaweedFS) -> None:
    """An API started by itself (as compose runs it) on a bucket nobody made yet creates it
    with its first probe, becomes ready and stores there."""
    url = seaweed.url(f"fresh-{secrets.token_hex(4)}", "cluster")
    api = start_api(tmp_path, nodes=[f"s3={url}"], env={
        "cluster_secret": "s3-fresh-" + secrets.token_hex(8), **FAST,
        "s3_credentials_file": seaweed.credentials_file()})
    try:
        wait_until(lambda: httpx.get(api.url + "/readyz", timeout=10).status_code == 200, 60,
                   "the API to be ready on the new bucket")
        with httpx.Client(base_url=api.url, timeout=60) as client:
            auth = bearer(signup_and_login(client, "fresh"))
            data = random.Random(5).randbytes(300_000)
            assert upload(client, auth, "/f", data).status_code == 201
            assert download(client, auth, "/f") == data
        store = S3Location.parse(url, seaweed.credentials).open(30.0)
        listed = [m for batch in obstore.list(store, "cluster/chunks") for m in batch]
        assert len(listed) == 1
    finally:
        api.stop()
