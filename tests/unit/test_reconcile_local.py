"""The local adapters around the reconcile core: state DB, scanner, ignore rules, no-clobber
renames, temp-file cleanup, and the checks on paths that come from the server."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path
from typing import cast

import pytest

from minidropbox.client import localfolder
from minidropbox.client.fakefolder import FakeFolder
from minidropbox.client.localfolder import RealFolder
from minidropbox.client.localpaths import UnsafeName
from minidropbox.client.remote import Remote
from minidropbox.client.sync import ignore, scanner
from minidropbox.client.sync.engine import cyclic_gc_held
from minidropbox.client.sync.ignore import IgnoreRules
from minidropbox.client.sync.localfs import leftovers, local_name, make_folder, remove_temps
from minidropbox.client.sync.remote import RemoteSide
from minidropbox.client.sync.scanner import scan, stat_of
from minidropbox.client.sync.state import BaseRow, LocalStat, StateDB
from minidropbox.core.chunking import chunk_bytes, content_hash
from minidropbox.core.errors import InvalidPath
from minidropbox.core.paths import normalize_path, path_key
from minidropbox.core.reconcile import Item


def digest(data: bytes) -> str:
    return content_hash(ref.hash for ref, _ in chunk_bytes(data))


def aged(path: Path, data: bytes) -> Path:
    """Write ``data`` with an mtime old enough to count as settled."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    old = time.time() - 10
    os.utime(path, (old, old))
    return path


def test_state_rename_moves_a_subtree_and_forget_drops_one(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "state.db")
    for item in (Item("/A", "folder"), Item("/A/x", "file", "h", 1), Item("/AB", "folder"),
                 Item("/A/s", "folder"), Item("/A/s/y", "file", "g", 2)):
        db.put(item)
    db.rename("/A", "/B")
    assert sorted(r.item.path for r in db.rows().values()) == ["/AB", "/B", "/B/s", "/B/s/y",
                                                              "/B/x"]
    db.forget("/B", subtree=True)
    assert [r.item.path for r in db.rows().values()] == ["/AB"]
    db.set_meta("cursor", "c1")
    db.close()
    assert StateDB(tmp_path / "state.db").get_meta("cursor") == "c1"


def test_state_rows_kept_in_memory_are_never_stale(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``rows`` answers from memory only while nothing wrote the base: after every kind of
    write (one, a batch, a failed one rolled back, a rollback SQLite makes itself) it
    answers what the file holds, as another connection reads it."""
    db = StateDB(tmp_path / "state.db")

    def on_disk() -> dict[str, BaseRow]:
        reader = StateDB(tmp_path / "state.db")
        try:
            return reader.rows()
        finally:
            reader.close()

    def check() -> None:
        assert db.rows() == on_disk()

    db.put(Item("/A", "folder"))
    check()
    rows = db.rows()
    rows.clear()  # the caller's copy
    check()
    db.begin()
    db.put(Item("/A/x", "file", "h", 1), LocalStat(1, 2, 3, 4))
    db.put(Item("/A/s", "folder"))
    assert "/a/x" in db.rows()  # inside the batch: what it wrote so far
    db.commit()
    check()
    db.put(Item("/A/s/y", "file", "g", 2))
    check()
    db.forget("/A/x")
    check()
    db.rename("/A", "/B")
    check()
    assert sorted(db.rows()) == ["/b", "/b/s", "/b/s/y"]
    real_key = path_key

    def failing_key(path: str) -> str:
        if path.startswith("/C/s"):
            raise OSError(28, "No space left on device")
        return real_key(path)

    monkeypatch.setattr("minidropbox.client.sync.state.path_key", failing_key)
    with pytest.raises(OSError):
        db.rename("/B", "/C")  # rolled back: nothing moved
    monkeypatch.undo()
    check()
    assert sorted(db.rows()) == ["/b", "/b/s", "/b/s/y"]
    db.begin()
    db.put(Item("/lost.txt", "file", "l", 1))
    assert "/lost.txt" in db.rows()
    db.conn.execute("ROLLBACK")  # as SQLite does itself after some I/O errors
    check()
    assert "/lost.txt" not in db.rows()
    db.forget("/B", subtree=True)
    check()
    db.put(Item("/z", "folder"))
    db.clear()
    check()
    assert db.rows() == {}
    db.close()


def test_scanner_reads_only_files_whose_stat_moved(tmp_path: Path) -> None:
    rules = IgnoreRules([])
    aged(tmp_path / "a.txt", b"alpha")
    aged(tmp_path / "d" / "b.txt", b"beta")
    folder = RealFolder(tmp_path)
    first = scan(folder, rules, {})
    assert first.hashed == 2 and first.items["/a.txt"].hash == digest(b"alpha")
    assert first.items["/d"].kind == "folder"
    base = {k: BaseRow(first.items[k], first.stats[k]) for k in first.stats}
    # Lying base hash: a matching stat means the file is not read again.
    base["/a.txt"] = BaseRow(Item("/a.txt", "file", "from-base"), first.stats["/a.txt"])
    again = scan(folder, rules, base)
    assert again.hashed == 0 and again.items["/a.txt"].hash == "from-base"
    aged(tmp_path / "a.txt", b"alpha, edited")
    assert scan(folder, rules, base).items["/a.txt"].hash == digest(b"alpha, edited")


def test_a_fresh_file_recorded_without_a_stat_is_read_at_once(tmp_path: Path) -> None:
    """A file just downloaded (its stat too fresh to trust) that still holds the recorded
    content is not "being written": the round that follows the download agrees at once.
    One that differs from the record waits to settle like any fresh file."""
    (tmp_path / "placed.txt").write_bytes(b"downloaded")
    (tmp_path / "edited.txt").write_bytes(b"edited since")
    base = {"/placed.txt": BaseRow(Item("/placed.txt", "file", digest(b"downloaded")), None),
            "/edited.txt": BaseRow(Item("/edited.txt", "file", digest(b"recorded")), None)}
    out = scan(RealFolder(tmp_path), IgnoreRules([]), base)
    assert out.items["/placed.txt"].hash == digest(b"downloaded")
    assert out.items["/edited.txt"].hash is None
    assert out.unsettled == 1 and out.recheck is not None


def test_scanner_leaves_files_being_written_and_unreadable_folders(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fresh.txt").write_bytes(b"just written")
    out = scan(RealFolder(tmp_path), IgnoreRules([]), {})
    assert out.items["/fresh.txt"].hash is None and out.unsettled == 1
    locked = tmp_path / "locked"
    aged(locked / "x.txt", b"x")
    base = {"/locked/x.txt": BaseRow(Item("/locked/x.txt", "file", "h", 1), None)}
    real_scandir = os.scandir

    def scandir(path: str | os.PathLike[str]) -> object:
        if Path(path) == locked:  # what a folder without read permission does (even as root)
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    out = scan(RealFolder(tmp_path), IgnoreRules([]), base)
    # Unknown, not deleted: the planner will wait rather than delete it on the server.
    assert out.items["/locked/x.txt"].hash is None
    assert out.unreadable == {"/locked/x.txt"}


def test_ignore_rules() -> None:
    rules = IgnoreRules(["*.log", "build/", "!keep.log"])
    for path, is_dir in (("/x.log", False), ("/build", True), ("/build/a.o", False),
                         ("/.minidropbox", True), ("/a/b.swp", False), ("/.DS_Store", False),
                         ("/x~", False), ("/.minidropbox-tmp-1234", False),
                         ("/.~lock.report.odt#", False)):
        assert rules.ignored(path, is_dir), path
    for path in ("/keep.log", "/notes.txt", "/sub/.minidropbox"):
        assert not rules.ignored(path), path


def test_ignore_answers_are_remembered_per_rule_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each round asks again about every name: an answer is computed once per rule text,
    never shared with other rules, and the memory is bounded."""
    monkeypatch.setattr(ignore, "MAX_REMEMBERED", 3)
    logs = IgnoreRules(["*.log", "remembered-test"])
    plain = IgnoreRules(["remembered-test"])
    assert logs.ignored("/a.log") and logs.ignored("/a.log") and not plain.ignored("/a.log")
    assert logs.ignored("/b", is_dir=False) is False and logs.ignored("/x.swp")
    assert IgnoreRules(["*.log", "remembered-test"]).spec is logs.spec  # one per text
    assert logs.spec.answers == {"a.log": True, "b": False, "x.swp": True}
    assert logs.ignored("/c.log") and logs.spec.answers == {"c.log": True}  # full: forgotten


@pytest.mark.parametrize("atomic", [True, False], ids=["renameat2", "link-fallback"])
def test_renames_never_clobber(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               atomic: bool) -> None:
    if not atomic:
        monkeypatch.setattr(localfolder, "_RENAMEAT2", None)
    folder = RealFolder(tmp_path)
    a, b = aged(tmp_path / "a", b"A"), aged(tmp_path / "b", b"B")
    with pytest.raises(FileExistsError):
        folder.rename("a", "b", replace=False)
    assert b.read_bytes() == b"B" and a.read_bytes() == b"A"
    folder.rename("a", "c", replace=False)
    assert (tmp_path / "c").read_bytes() == b"A" and not a.exists()
    (tmp_path / "dir").mkdir()
    with pytest.raises(FileExistsError):
        folder.rename("dir", "b", replace=False)
    folder.rename("dir", "dir2", replace=False)
    assert (tmp_path / "dir2").is_dir()
    folder.rename("c", "b", replace=True)
    assert b.read_bytes() == b"A"


def test_stale_temp_files_are_cleaned(tmp_path: Path) -> None:
    aged(tmp_path / "x" / ".minidropbox-tmp-abcd", b"half a download")
    aged(tmp_path / "x" / "real.txt", b"kept")
    folder = RealFolder(tmp_path)
    assert remove_temps(folder, leftovers(folder).temps) == 1
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["real.txt"]


def test_one_walk_finds_what_interrupted_syncs_left() -> None:
    """``leftovers`` finds what the separate walks for temp files, respells and aside files
    did: temp and aside files anywhere (also inside a respell or a folder named like an
    aside file), respells not inside another one, in walk order."""
    folder = FakeFolder()
    folder.write(".minidropbox-tmp-2", b"t")
    folder.write("a/.minidropbox-tmp-1", b"t")
    folder.write("a/.minidropbox-aside-x.txt", b"x")
    folder.write("b/.minidropbox-respell-C/.minidropbox-aside-y.txt", b"y")
    folder.write("b/.minidropbox-respell-C/.minidropbox-respell-d", b"d")
    folder.write("b/.minidropbox-respell-C/.minidropbox-tmp-3", b"t")
    folder.write(".minidropbox-respell-E.txt", b"e")
    folder.write(".minidropbox-aside-folder/z/.minidropbox-aside-w", b"w")
    folder.makedirs(".minidropbox-tmp-folder")
    found = leftovers(folder)
    assert found.temps == [".minidropbox-tmp-2", "a/.minidropbox-tmp-1",
                           "b/.minidropbox-respell-C/.minidropbox-tmp-3"]
    assert found.respells == [".minidropbox-respell-E.txt", "b/.minidropbox-respell-C"]
    assert found.asides == [".minidropbox-aside-folder/z/.minidropbox-aside-w",
                            "a/.minidropbox-aside-x.txt",
                            "b/.minidropbox-respell-C/.minidropbox-aside-y.txt"]


def test_kinds_is_list_without_the_stats(tmp_path: Path) -> None:
    aged(tmp_path / "f.txt", b"f")
    aged(tmp_path / "d" / "g.txt", b"g")
    (tmp_path / "to-d").symlink_to(tmp_path / "d")
    (tmp_path / "to-f").symlink_to(tmp_path / "f.txt")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "fifo")
    folder = RealFolder(tmp_path)
    assert folder.kinds("") == [(name, info.kind) for name, info in folder.list("")]
    assert {kind for _, kind in folder.kinds("")} == {"file", "folder", "symlink", "other"}
    assert folder.kinds("d") == [("g.txt", "file")]
    with pytest.raises(FileNotFoundError):
        folder.kinds("missing")


def test_a_scan_against_the_base_reads_nothing_and_sees_the_same_tree(tmp_path: Path) -> None:
    """The second scan takes every file whose stat is the base's without reading it, and
    describes the tree exactly as the first: decomposed (NFD) names keyed as the server
    keys them, case clashes parted the same way (the name the base spells keeps its
    name), ignored and invalid names left out the same way."""
    rules = IgnoreRules(["build/"])
    for name in ("cafe\u0301.txt", "Caf\u00e9s/x.txt", "readme.TXT", "build/out.o",
                 "notes.swp", "d/b.txt", "bad\u202etxt.exe"):
        aged(tmp_path / name, name.encode())
    folder = RealFolder(tmp_path)
    first = scan(folder, rules, {})
    assert "/caf\u00e9.txt" in first.items and "/build/out.o" not in first.items
    assert not any(p.endswith(".swp") for p in first.items)
    base = {k: BaseRow(item, first.stats.get(k)) for k, item in first.items.items()}
    # A newcomer on this (case-sensitive) disk that differs only in case from a known name
    # and sorts before it: the newcomer is parted, the name the base spells is kept.
    aged(tmp_path / "README.TXT", b"newcomer")
    again = scan(folder, rules, base)
    assert again.hashed == 1  # the newcomer, under its new name
    assert again.case_conflicts == ["README.TXT differs only in case from /readme.TXT: "
                                    "renamed to README (case conflict).TXT"]
    parted = path_key("/README (case conflict).TXT")
    assert again.items.pop(parted).hash == digest(b"newcomer")
    assert again.items == first.items and again.paths.pop(parted)
    assert again.paths == first.paths and again.skipped == first.skipped
    assert again.stats.pop(parted) and again.stats == first.stats and len(first.skipped) == 1


def test_names_the_scan_remembers_are_what_normalising_them_gives(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``scanner._keyed`` answers exactly as ``normalize_path`` and ``path_key`` do, asked
    once or again, valid or not, and forgets everything past its bound."""
    monkeypatch.setattr(scanner, "MAX_REMEMBERED", 3)
    monkeypatch.setattr(scanner, "_KEYED", {})
    raws = ["/Caf\u00e9.txt", "/cafe\u0301.TXT", "/a/\u202egpj.exe", "/a\\b", "/ok/x",
            "/x\x01y", "/" + "n" * 300]
    for raw in raws + raws:
        path, key = scanner._keyed(raw)
        try:
            want = normalize_path(raw)
        except InvalidPath as exc:
            assert isinstance(path, InvalidPath) and path.message == exc.message and key == ""
        else:
            assert (path, key) == (want, path_key(want))
        assert len(scanner._KEYED) <= 3


def test_the_cyclic_gc_is_held_only_while_a_round_plans() -> None:
    assert gc.isenabled()
    with pytest.raises(ValueError), cyclic_gc_held():
        assert not gc.isenabled()
        raise ValueError
    assert gc.isenabled()
    gc.disable()
    try:
        with cyclic_gc_held():
            pass
        assert not gc.isenabled()  # whoever turned it off turns it on
    finally:
        gc.enable()


def test_server_paths_are_checked_before_they_touch_the_disk(tmp_path: Path) -> None:
    remote = RemoteSide(cast(Remote, None), "/Work")
    assert remote.to_rel("/Work/a/b.txt") == "/a/b.txt"
    assert remote.to_rel("/work/A") == "/A"  # the server compares case-insensitively
    for bad in ("/Other/x", "/Workx/y", "/Work/../etc/passwd", "/Work/a\\b", "/Work/a//b"):
        with pytest.raises(UnsafeName):
            remote.to_rel(bad)
    for bad in ("/../escape", "/a/../../b", "/a\\b", "/a//b"):
        with pytest.raises(UnsafeName):
            local_name(bad)
    assert local_name("/a/b.txt") == "a/b.txt" and local_name("/") == ""
    assert stat_of(RealFolder(tmp_path).info("")).ino == os.stat(tmp_path).st_ino


def test_folders_that_lead_outside_the_root_are_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    folder = RealFolder(root)
    with pytest.raises(UnsafeName):
        make_folder(folder, local_name("/link/new"))
    assert list(outside.iterdir()) == []
    make_folder(folder, local_name("/a/b"))
    assert (root / "a" / "b").is_dir()
