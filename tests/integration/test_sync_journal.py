"""The sync client's server tree, kept up to date from the change journal, against a real
cluster: after random changes it equals a fresh full listing, for the whole account and for a
remote folder that changes cross; an unusable cursor (410) falls back to a full listing."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from minidropbox.client.api import ApiClient
from minidropbox.client.localfolder import RealFolder
from minidropbox.client.remote import Remote
from minidropbox.client.sync.engine import SyncEngine, SyncOptions
from minidropbox.client.sync.ignore import IgnoreRules
from minidropbox.client.sync.journal import NeedsListing
from minidropbox.client.sync.remote import RemoteSide
from minidropbox.client.sync.state import STATE_FILE
from minidropbox.client.sync.status import Status
from minidropbox.client.upload_many import upload_many
from minidropbox.client.values import Entry
from minidropbox.core import errors
from tests.conftest import PASSWORD, signup_and_login
from tests.harness import TestCluster

SEED = int(os.environ.get("MINIDROPBOX_JOURNAL_SEED", "7"))


@pytest.fixture
def api(module_cluster: TestCluster) -> Iterator[Remote]:
    import httpx

    name = "u" + uuid.uuid4().hex[:12]
    with httpx.Client(base_url=module_cluster.url, timeout=30) as http:
        signup_and_login(http, name)
    client = ApiClient(module_cluster.url, persist=False)
    client.login(name, PASSWORD)
    try:
        yield Remote(client)
    finally:
        client.close()


class RandomUser:
    """Random commits, edits, folders, moves (also across the remote folder), deletes and
    undeletes, straight through the API."""

    def __init__(self, api: Remote, rng: random.Random, tmp: Path) -> None:
        self.api, self.rng, self.tmp = api, rng, tmp

    def paths(self) -> list[Entry]:
        return list(self.api.list_folder("/", recursive=True))

    def step(self) -> None:
        rng, api = self.rng, self.api
        entries = self.paths()
        folders = ["/", "/R", "/R/d", "/R/d/s", "/out"]
        folders += [e.path for e in entries if e.is_folder]
        op = rng.choice(["put", "put", "put", "mkdir", "move", "move", "delete", "undelete"])
        try:
            if op == "put":
                folder = rng.choice(folders).rstrip("/")
                local = self.tmp / "f"
                local.write_bytes(os.urandom(rng.randint(0, 64)))
                names = ["a.txt", "b.txt", "C.md"]
                names += [e.name for e in entries if e.is_file][:3]
                upload_many(api, [(local, f"{folder}/{rng.choice(names)}")])
            elif op == "mkdir":
                api.make_folder(f"{rng.choice(folders).rstrip('/')}/"
                                f"{rng.choice(['x', 'y', 'Z'])}")
            elif op == "move" and entries:
                src = rng.choice(entries).path
                dst = f"{rng.choice(folders).rstrip('/')}/{rng.choice(['m', 'n', 'a.txt'])}"
                api.move(src, dst)
            elif op == "delete" and entries:
                api.delete(rng.choice(entries).path)
            elif op == "undelete":
                trash = api.trash()
                if trash:
                    api.undelete(rng.choice(trash).path)
        except (errors.Conflict, errors.AlreadyExists, errors.NotFound,
                errors.InvalidInput):
            pass  # a random step that makes no sense here


def engine_for(api: Remote, options: SyncOptions) -> SyncEngine:
    return SyncEngine(api, RealFolder(options.root), options.root / STATE_FILE, options,
                      Status(quiet=True))


@pytest.mark.parametrize("root", ["/", "/R"])
def test_journal_driven_tree_equals_a_full_listing(api: Remote, tmp_path: Path,
                                                   root: str) -> None:
    rng = random.Random(f"{SEED}{root}")
    user = RandomUser(api, rng, tmp_path)
    api.make_folder("/R")
    remote = RemoteSide(api, root)
    rules = IgnoreRules([])
    remote.relist()
    caught_up = relisted = 0
    for step in range(60):
        for _ in range(rng.randint(1, 4)):
            user.step()
        if remote.root != "/" and not remote.root_exists():
            api.make_folder(root)
        try:
            remote.catch_up()
            caught_up += 1
        except NeedsListing:
            remote.relist()  # what the engine does
            relisted += 1
            continue
        fresh = RemoteSide(api, root)
        fresh.relist()
        assert remote.tree(rules).items == fresh.tree(rules).items, \
            f"seed {SEED}, step {step} (MINIDROPBOX_JOURNAL_SEED replays)"
        assert remote.cache is not None and remote.cache.cursor == fresh.cache.cursor  # type: ignore[union-attr]
    print(f"caught up {caught_up} times, listed again {relisted} times")
    assert caught_up > 40, (caught_up, relisted)


def test_an_unusable_cursor_falls_back_to_a_full_listing(api: Remote,
                                                         tmp_path: Path) -> None:
    (tmp_path / "local").mkdir()
    engine = engine_for(api, SyncOptions(root=tmp_path / "local"))
    generations: list[str | None] = []
    read_generation = engine.remote.generation

    def counted() -> str | None:
        generations.append(read_generation())
        return generations[-1]

    engine.remote.generation = counted  # type: ignore[method-assign]
    engine.open()
    try:
        assert engine.sync().done
        assert engine.remote.listings == 1 and len(generations) == 1
        (tmp_path / "f").write_bytes(b"from elsewhere")
        upload_many(api, [(tmp_path / "f", "/new.txt")])
        assert engine.sync().done
        assert (tmp_path / "local" / "new.txt").read_bytes() == b"from elsewhere"
        # The change came from the journal: no listing, no generation check.
        assert engine.remote.listings == 1 and len(generations) == 1
        assert engine.remote.cache is not None
        engine.remote.cache.cursor = "not-a-cursor"
        upload_many(api, [(tmp_path / "f", "/newer.txt")])
        assert engine.sync().done
        assert (tmp_path / "local" / "newer.txt").exists()
        assert engine.remote.listings == 2 and len(generations) == 2
    finally:
        engine.close()


def test_a_renamed_file_is_read_once_not_every_round(api: Remote, tmp_path: Path) -> None:
    """A rename changes a file's ctime: the content is read once (to match it with the base),
    and the new stat recorded, so a big renamed file does not slow every later round."""
    root = tmp_path / "local"
    root.mkdir()
    engine = engine_for(api, SyncOptions(root=root, settle=0.0))
    engine.open()
    try:
        # Mtimes a few seconds old: a stat whose mtime is within 0.1 s of now is not trusted
        # (a write in the same clock tick could keep it), and such a file is read again.
        (root / "big.bin").write_bytes(os.urandom(100_000))
        past = time.time() - 10
        os.utime(root / "big.bin", (past, past))
        assert engine.sync().done
        os.rename(root / "big.bin", root / "moved.bin")
        assert engine.sync().done  # read once to find it is the same content: a move
        assert engine.round().scan.hashed == 0
        os.utime(root / "moved.bin", (past + 5, past + 5))  # touched: new mtime, same bytes
        assert [engine.round().scan.hashed for _ in range(3)] == [1, 0, 0]
    finally:
        engine.close()
