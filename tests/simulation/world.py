"""A deterministic simulation of sync, after Dropbox's CanopyCheck and Trinity.

Three clients run the real sync engine (scanner, planner, executor, state DB) in one process
against ``FakeFolder``s (case-sensitive or not, per client) and one in-memory server with
the real server's rules (``tests/unit/fake_server.py``). Everything that could happen in
another order comes from one seeded ``random.Random``: which user does what and when, when
each client runs a round (notifications arrive late, out of order or not at all: a round
reads the journal from its own cursor, so that is all a notification decides), and, at
every step a client takes — each disk operation and each request — whether it crashes
there, whether the network fails before or after the server acted, whether a user changes
something meanwhile, or whether another client runs a whole round in between. Time is the
simulation's own clock, so a seed replays exactly.

After the schedule, faults stop and every client syncs until nothing changes; then the
invariants must hold (``World.check``):

- every client's tree equals the server's, name for name (spelling included) and byte for
  byte;
- no temp file is left anywhere;
- every content a user wrote is on the server (live, in the trash or an older version) or
  was destroyed by a user (overwritten or deleted where it was): sync lost nothing;
- no conflicted copy unless two users really raced: in a *partitioned* schedule each user
  works only in a folder of their own, so any conflicted copy there is a bug.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from minidropbox.client.api import ServerUnreachable
from minidropbox.client.fakefolder import FakeFolder, SimulatedCrash
from minidropbox.client.localfolder import (
    FileInfo,
    Kinds,
    Reader,
    Writer,
    Written,
    join,
    parent_of,
    write_temps_one_by_one,
)
from minidropbox.client.localpaths import ASIDE_PREFIX, RESPELL_PREFIX, TMP_PREFIX
from minidropbox.client.remote import Remote
from minidropbox.client.sync.engine import SyncEngine, SyncOptions
from minidropbox.client.sync.state import STATE_DIR
from minidropbox.client.sync.status import Status
from minidropbox.core import errors
from minidropbox.core.chunking import content_hash, sha256_hex
from minidropbox.core.paths import path_key
from minidropbox.core.sync_names import DeleteLimits
from tests.unit.fake_server import Answer, Call, FakeServer, Serve

CLIENTS = 3
EVENTS = 24  # top-level events per schedule
SETTLE_PASSES = 8  # rounds of "everyone syncs" allowed to reach agreement at the end
START_NS = 1_700_000_000 * 10**9
MUTATING = frozenset({"create_temp", "open_write", "set_mtime", "mkdir", "rename", "unlink",
                      "rmdir"})
FOLDER_NAMES = ("a", "b", "B", "c")
FILE_NAMES = ("x.txt", "X.txt", "y.txt", "z")
LEFTOVERS = (TMP_PREFIX, ASIDE_PREFIX, RESPELL_PREFIX)  # sync's own names: none may remain
NO_RAIL = DeleteLimits(max_deletes=10**9, ratio_min_tree=10**9)


def _sync_own(name: str) -> bool:
    """Sync's own names: its state folder, temp, aside and half-respelled files."""
    return (name.split("/", 1)[0].casefold() == STATE_DIR
            or name.rsplit("/", 1)[-1].startswith(LEFTOVERS))


class SimFailure(AssertionError):
    """An invariant broke; the message names the seed and the trace replays it."""


class Clock:
    """The simulation's time: epoch nanoseconds, moved only by the schedule."""

    def __init__(self) -> None:
        self.ns = START_NS

    def advance(self, seconds: float) -> None:
        self.ns += int(seconds * 1e9)

    def now_ns(self) -> int:
        return self.ns

    def monotonic(self) -> float:
        return (self.ns - START_NS) / 1e9

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.ns / 1e9, UTC)


@dataclass
class Faults:
    """Per-step odds (each step of a round draws once)."""

    crash: float = 0.0
    net: float = 0.0
    interfere: float = 0.0


class TracedStatus(Status):
    """The action log of one client, into the schedule's trace."""

    def __init__(self, note: Callable[[str], None], index: int) -> None:
        super().__init__(quiet=True)
        self.note, self.index = note, index

    def action(self, message: str) -> None:
        self.note(f"client {self.index}: {message}")


class StepFolder:
    """The client's disk as the engine sees it: each operation is a step of the schedule."""

    def __init__(self, inner: FakeFolder, step: Callable[[str, str], None]) -> None:
        self.inner, self.step = inner, step

    def info(self, name: str) -> FileInfo:
        self.step("info", name)
        return self.inner.info(name)

    def list(self, name: str) -> list[tuple[str, FileInfo]]:
        self.step("list", name)
        return self.inner.list(name)

    def kinds(self, name: str) -> Kinds:
        self.step("list", name)
        return self.inner.kinds(name)

    def open_read(self, name: str) -> AbstractContextManager[Reader]:
        self.step("open_read", name)
        return self.inner.open_read(name)

    def create_temp(self, folder: str) -> str:
        self.step("create_temp", folder)
        return self.inner.create_temp(folder)

    def open_write(self, name: str) -> AbstractContextManager[Writer]:
        self.step("open_write", name)
        return self.inner.open_write(name)

    def set_mtime(self, name: str, mtime_ns: int) -> None:
        self.step("set_mtime", name)
        self.inner.set_mtime(name, mtime_ns)

    def write_temps(self, folder: str, contents: Sequence[tuple[bytes, int]],
                    ) -> Written:
        return write_temps_one_by_one(self, folder, contents)

    def mkdir(self, name: str) -> None:
        self.step("mkdir", name)
        self.inner.mkdir(name)

    def rename(self, src: str, dst: str, *, replace: bool) -> None:
        self.step("rename", f"{src} -> {dst}")
        self.inner.rename(src, dst, replace=replace)

    def unlink(self, name: str) -> None:
        self.step("unlink", name)
        self.inner.unlink(name)

    def rmdir(self, name: str) -> None:
        self.step("rmdir", name)
        self.inner.rmdir(name)

    def fsync_dir(self, name: str) -> None:
        self.step("fsync_dir", name)
        self.inner.fsync_dir(name)

    def is_inside(self, name: str) -> bool:
        return self.inner.is_inside(name)


@dataclass
class Client:
    index: int
    folder: FakeFolder
    disk: StepFolder
    remote: Remote
    state_path: Path
    engine: SyncEngine | None = None
    dead: bool = False  # crashed mid-round: every further step of that round dies too
    home: str = ""  # partitioned schedules: the only folder this client's user touches

    @property
    def device(self) -> str:
        return f"dev{self.index}"


@dataclass
class World:
    seed: int
    workdir: Path
    rng: random.Random = field(init=False)
    clock: Clock = field(default_factory=Clock)
    server: FakeServer = field(default_factory=FakeServer)
    clients: list[Client] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)
    trace: list[str] = field(default_factory=list)
    written: set[bytes] = field(default_factory=set)
    destroyed: set[bytes] = field(default_factory=set)
    replacing: set[bytes] = field(default_factory=set)  # moved onto a name the server had
    partitioned: bool = False
    crashes: int = 0
    depth: int = 0  # > 0 while another client's round runs inside a step
    writes: int = 0
    main: int = field(default_factory=threading.get_ident)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        rng = self.rng
        self.partitioned = rng.random() < 0.4
        self.faults = Faults(crash=rng.choice([0.0, 0.01, 0.03]),
                             net=rng.choice([0.0, 0.02, 0.05]),
                             interfere=rng.choice([0.0, 0.02, 0.05]))
        for i in range(CLIENTS):
            folder = FakeFolder(case_insensitive=rng.random() < 0.5, clock=self.clock.now_ns)
            client = Client(i, folder, StepFolder(folder, self._stepper(i)),
                            self.server.direct_remote(self._transport(i)),
                            self.workdir / f"state{i}.db",
                            home=f"u{i}" if self.partitioned else "")
            self.clients.append(client)
        self.note(f"seed {self.seed}: partitioned={self.partitioned} faults={self.faults} "
                  f"case-insensitive={[c.folder.case_insensitive for c in self.clients]}")

    def note(self, line: str) -> None:
        self.trace.append(f"[{self.clock.monotonic():8.3f}] {line}")

    # -- steps: where the schedule can cut in ------------------------------------------------
    def _stepper(self, index: int) -> Callable[[str, str], None]:
        def step(op: str, name: str) -> None:
            self._step(self.clients[index], op, name, mutating=op in MUTATING)
        return step

    def _transport(self, index: int) -> Serve:
        def serve(call: Call) -> Answer:
            client = self.clients[index]
            what = f"{call.method} {call.path}"
            self._step(client, "net", what, mutating=True)
            fail = self.faults.net and self.rng.random() < self.faults.net
            if fail and self.rng.random() < 0.5:
                self.note(f"client {index}: network fails before {what}")
                raise ServerUnreachable("simulated network failure")
            answer = self.server.serve(call)
            if fail:
                self.note(f"client {index}: network fails after {what}: answer lost")
                raise ServerUnreachable("simulated lost answer")
            return answer
        return serve

    def _step(self, client: Client, op: str, name: str, *, mutating: bool) -> None:
        if client.dead:
            raise SimulatedCrash("already crashed")
        if threading.get_ident() != self.main:
            # Chunk uploads run in worker threads: they may fail or crash, no more.
            mutating = op == "net"
        elif self.depth == 0 and self.faults.interfere and \
                self.rng.random() < self.faults.interfere:
            self._interfere(client, f"{op} {name}")
        if mutating and self.faults.crash and self.rng.random() < self.faults.crash:
            self.note(f"client {client.index}: crash before {op} {name}")
            self.crashes += 1
            client.dead = True
            raise SimulatedCrash(f"before {op} {name}")

    def _interfere(self, client: Client, where: str) -> None:
        self.depth += 1
        try:
            other = self.rng.choice(self.clients)
            if other is client or self.rng.random() < 0.6:
                self.note(f"client {client.index} at {where}: a user acts meanwhile")
                self.user_action(other if self.rng.random() < 0.5 else client)
            else:
                self.note(f"client {client.index} at {where}: client {other.index} "
                          "runs a round meanwhile")
                self.run_round(other)
        finally:
            self.depth -= 1

    # -- clients -----------------------------------------------------------------------------
    def start(self, client: Client) -> SyncEngine:
        client.dead = False
        opts = SyncOptions(root=Path(f"/sim{client.index}"), device=client.device,
                           limits=NO_RAIL, transfer_workers=1)
        engine = SyncEngine(client.remote, client.disk, client.state_path, opts,
                            TracedStatus(self.note, client.index), clock=self.clock.datetime,
                            now_ns=self.clock.now_ns, monotonic=self.clock.monotonic)
        client.engine = engine
        try:
            engine.open()
        except BaseException:
            self.crashed(client)
            raise
        return engine

    def crashed(self, client: Client) -> None:
        """The process died: what it had not committed to its state DB is gone."""
        engine, client.engine = client.engine, None
        if engine is not None and engine.state is not None:
            engine.state.conn.close()  # an open transaction is rolled back, as after a kill
            engine.state = None
        client.dead = False

    def run_round(self, client: Client, *, whole: bool = False) -> bool:
        """One reconcile round (``whole``: rounds until done); whether the client agreed."""
        if client.engine is None and client.dead:
            return False
        try:
            engine = client.engine or self.start(client)
            if whole:
                return engine.sync().done
            round_ = engine.round()
            return round_.plan.done and not round_.outcome.failed
        except SimulatedCrash:
            self.crashed(client)
            return False
        except (errors.MiniDropboxError, OSError) as exc:
            # What the daemon retries with backoff: an unreachable server, a failed read.
            message = exc.message if isinstance(exc, errors.MiniDropboxError) else str(exc)
            self.note(f"client {client.index}: round failed: {message}")
            return False

    # -- users -------------------------------------------------------------------------------
    def _content(self, client: Client) -> bytes:
        self.writes += 1
        data = f"seed {self.seed} client {client.index} write {self.writes}\n".encode()
        self.written.add(data)
        return data

    def _items(self, folder: FakeFolder, under: str) -> list[tuple[str, bytes | None]]:
        """What a user sees to act on (not sync's own folder or files)."""
        return [(name, data) for name, data in sorted(folder.tree().items())
                if (not under or name == under or name.startswith(under + "/"))
                and not _sync_own(name)]

    def _lose(self, folder: FakeFolder, name: str) -> None:
        """The user destroys ``name`` (and what is under it) on purpose; looked up as the
        folder looks names up (``x.txt`` is ``X.txt`` on a case-insensitive one)."""
        try:
            info = folder.info(name)
        except (FileNotFoundError, NotADirectoryError):
            return
        if info.kind == "file":
            self.destroyed.add(folder.read(name))
            return
        for child, _ in folder.list(name):
            self._lose(folder, join(name, child))

    def user_action(self, client: Client) -> None:
        rng, folder = self.rng, client.folder
        home = client.home
        if home:
            with contextlib.suppress(FileExistsError):
                folder.mkdir(home)
        items = [(n, d) for n, d in self._items(folder, home) if n != home]
        folders = [home] + [n for n, d in items if d is None]
        files = [n for n, d in items if d is not None]
        kind = rng.choice(["write", "write", "edit", "edit", "delete", "mkdir", "rmtree",
                           "move", "move", "respell", "swap", "touch"])
        who = f"user {client.index}"
        try:
            if kind == "write" or (kind in ("edit", "delete", "touch", "swap") and not files):
                parent = rng.choice(folders)
                if parent.count("/") >= 2:
                    parent = home
                name = join(parent, rng.choice(FILE_NAMES))
                if self._is_folder(folder, name):
                    return
                self._lose(folder, name)
                folder.write(name, self._content(client))
                self.note(f"{who} writes {name}")
            elif kind == "edit":
                name = rng.choice(files)
                self._lose(folder, name)
                folder.write(name, self._content(client))
                self.note(f"{who} edits {name}")
            elif kind == "delete":
                name = rng.choice(files)
                self._lose(folder, name)
                folder.unlink(name)
                self.note(f"{who} deletes {name}")
            elif kind == "touch":
                name = rng.choice(files)
                folder.set_mtime(name, self.clock.now_ns())
                self.note(f"{who} touches {name}")
            elif kind == "mkdir":
                parent = rng.choice(folders)
                if parent.count("/") >= 2:
                    parent = home
                name = join(parent, rng.choice(FOLDER_NAMES))
                folder.mkdir(name)
                self.note(f"{who} makes folder {name}")
            elif kind == "rmtree":
                if len(folders) < 2:
                    return
                name = rng.choice(folders[1:])
                self._lose(folder, name)
                self._rmtree(folder, name)
                self.note(f"{who} deletes folder {name}")
            elif kind == "move":
                if not items:
                    return
                name = rng.choice([n for n, _ in items])
                parent = rng.choice(folders)
                dest = join(parent, rng.choice(FOLDER_NAMES + FILE_NAMES))
                if dest == name or dest.startswith(name + "/") or parent.count("/") >= 2:
                    return
                folder.rename(name, dest, replace=False)
                self.note(f"{who} moves {name} -> {dest}")
                if path_key("/" + dest) in self.server.entries:
                    # Onto a name the server still has (deleted here, not yet synced): the
                    # planner sees that name changed, not a move.
                    self._mark_replacing(folder, dest)
            elif kind == "respell":
                if not items:
                    return
                name = rng.choice([n for n, _ in items])
                leaf = name.rsplit("/", 1)[-1]
                new = leaf.swapcase()
                if new == leaf:
                    return
                dest = join(parent_of(name), new)
                folder.rename(name, dest, replace=False)
                self.note(f"{who} renames {name} -> {dest} (case only)")
            elif kind == "swap":
                name = rng.choice(files + folders[1:])
                self._lose(folder, name)
                if folder.info(name).kind == "folder":
                    self._rmtree(folder, name)
                    folder.write(name, self._content(client))
                    self.note(f"{who} replaces folder {name} with a file")
                else:
                    folder.unlink(name)
                    folder.mkdir(name)
                    self.note(f"{who} replaces file {name} with a folder")
        except (FileExistsError, FileNotFoundError, IsADirectoryError, NotADirectoryError):
            pass  # the user's command failed; nothing changed
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise

    def _mark_replacing(self, folder: FakeFolder, name: str) -> None:
        info = folder.info(name)
        if info.kind == "file":
            self.replacing.add(folder.read(name))
            return
        for child, _ in folder.list(name):
            self._mark_replacing(folder, join(name, child))

    @staticmethod
    def _is_folder(folder: FakeFolder, name: str) -> bool:
        try:
            return folder.info(name).kind == "folder"
        except FileNotFoundError:
            return False

    def _rmtree(self, folder: FakeFolder, name: str) -> None:
        for child, info in folder.list(name):
            path = join(name, child)
            if info.kind == "folder":
                self._rmtree(folder, path)
            else:
                folder.unlink(path)
        folder.rmdir(name)

    # -- the schedule ------------------------------------------------------------------------
    def run(self, events: int = EVENTS) -> None:
        rng = self.rng
        for _ in range(events):
            self.clock.advance(rng.choice([0.0, 0.05, 0.2, 0.5, 1.0]))
            client = rng.choice(self.clients)
            roll = rng.random()
            if roll < 0.5:
                self.user_action(client)
            elif roll < 0.95 or client.engine is None:
                self.note(f"client {client.index} runs a round")
                self.run_round(client)
            else:
                # The journal was trimmed past this client's cursor (410): it lists in full.
                self.note(f"client {client.index}: its cursor is reset")
                client.engine.remote.forget_tree()
        self.settle()
        self.check()

    def settle(self) -> None:
        """No more faults: everyone syncs until all agree (a lost notification is made up
        for by the daemon's periodic rescan, which this is)."""
        self.faults = Faults()
        self.note("settling: no more faults")
        for _ in range(SETTLE_PASSES):
            self.clock.advance(1.0)
            done = [self.run_round(c, whole=True) for c in self.clients]
            if all(done) and self._trees_agree():
                return
        want = self.server_tree()
        diffs = {c.index: sorted(set(self.local_tree(c).items()) ^ set(want.items()), key=str)
                 for c in self.clients}
        raise self.failure(f"the clients did not agree after settling: {diffs}")

    def _trees_agree(self) -> bool:
        want = self.server_tree()
        return all(self.local_tree(c) == want for c in self.clients)

    def server_tree(self) -> dict[str, bytes | None]:
        """The server's tree, each folder spelled as its own entry is (an entry created
        as ``/A/x`` beside a folder ``/a`` is ``a/x``: the server compares names without
        case, and so does a client placing it)."""
        entries = {path_key(e.path): e for e in self.server.entries.values()}

        def spelled(path: str) -> str:
            parent = parent_of(path)
            name = entries[path_key(path)].path.rsplit("/", 1)[-1]
            return name if parent in ("", "/") else join(spelled(parent), name)
        return {spelled(e.path): self.server.content(e.path) if e.type == "file" else None
                for e in entries.values()}

    def local_tree(self, client: Client) -> dict[str, bytes | None]:
        """The client's synced tree (its state folder, ``.minidropbox``, is its own)."""
        return {n: d for n, d in client.folder.tree().items()
                if n.split("/", 1)[0].casefold() != STATE_DIR}

    # -- invariants --------------------------------------------------------------------------
    def failure(self, what: str) -> SimFailure:
        lines = "\n".join(self.trace[-80:])
        return SimFailure(f"sync simulation, seed {self.seed}: {what}\n"
                          f"replay: MINIDROPBOX_SIM_SEED={self.seed} .venv/bin/python -m pytest "
                          f"tests/simulation -k replay\n--- trace (last 80 steps) ---\n{lines}")

    def check(self) -> None:
        want = self.server_tree()
        for c in self.clients:
            have = self.local_tree(c)
            # Its state DB lives elsewhere here, so nothing of sync's may be left anywhere.
            temps = [n for n in c.folder.tree() if _sync_own(n)]
            if temps:
                raise self.failure(f"client {c.index} has temp files left: {temps}")
            if have != want:
                diff = sorted(set(have.items()) ^ set(want.items()), key=str)
                raise self.failure(f"client {c.index}'s tree differs from the server's: {diff}")
        kept = {data for _, data in self.server.history}
        lost = sorted(self.written - self.destroyed - kept)
        if lost:
            raise self.failure(f"lost content: {lost}")
        if self.partitioned:
            copies = [n for n in want if "(conflicted copy" in n]
            if copies:
                raise self.failure(f"conflicted copies without a race: {copies}")
            reborn = self._reborn()
            if reborn:
                raise self.failure(f"moved files lost their versions (deleted, then uploaded "
                                   f"as new files): {reborn}")

    def _reborn(self) -> list[str]:
        """New files on the server holding content a sync had deleted there before: a
        move made into a delete and an upload, which loses the file's versions. Every
        write is new content and users act only on their own disks, so with nobody racing
        only a move brings deleted content back. Not counted, as the planner does not see
        them as moves: content a user moved onto a name the server still had (deleted on
        this disk, not yet synced: to the planner that name changed), and a file moved into
        a new folder that took its own name (``x.txt`` into ``X.txt/`` on a case-sensitive
        disk: the server cannot hold both at once, so the old file goes first)."""
        journal = self.server.journal
        deleted: dict[str, tuple[int, str]] = {}
        for at, digest, path in self.server.deleted:
            deleted.setdefault(digest, (at, path_key(path)))
        replacing = {content_hash([sha256_hex(data)]) for data in self.replacing}
        return [e["path"] for at, e in enumerate(journal)
                if e["op"] == "commit" and e["version"] == 1
                and e["content_hash"] in deleted and e["content_hash"] not in replacing
                and deleted[e["content_hash"]][0] < at
                and not path_key(e["path"]).startswith(deleted[e["content_hash"]][1] + "/")]

    def close(self) -> None:
        for c in self.clients:
            if c.engine is not None:
                c.engine.close()
            c.remote.close()


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    """A folder for the state DBs: on tmpfs when there is one (SQLite fsyncs every commit)."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    path = Path(tempfile.mkdtemp(prefix="minidropbox-sim-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def simulate(seed: int, workdir: Path, events: int = EVENTS) -> World:
    """Run one seeded schedule in ``workdir`` (an empty folder); ``SimFailure`` if an
    invariant broke."""
    world = World(seed, workdir)
    try:
        world.run(events)
    finally:
        world.close()
    return world


def run_seeds(seeds: range) -> list[str]:
    """Each failing seed's report (empty: all passed)."""
    failures: list[str] = []
    with scratch() as root:
        for seed in seeds:
            workdir = root / str(seed)
            workdir.mkdir()
            try:
                simulate(seed, workdir)
            except SimFailure as exc:
                failures.append(str(exc))
            except Exception as exc:  # a crash of the engine itself is a failure too
                failures.append(f"sync simulation, seed {seed}: {type(exc).__name__}: {exc}\n"
                                f"replay: MINIDROPBOX_SIM_SEED={seed} .venv/bin/python -m "
                                "pytest tests/simulation -k replay")
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
    return failures

