"""``minidropbox admin check`` against a real cluster: clean after uploads, and each kind of
damage — a lost copy, a chunk with no copy left, rows removed or altered behind the API's
back — is caught by the invariant that names it, the must ones failing the command."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
from sqlalchemy import delete, select, update

from minidropbox.metadata.db import Database
from minidropbox.metadata.tables import entries, journal, replicas
from tests.conftest import PASSWORD, bearer, signup_and_login
from tests.harness import TestCluster
from tests.integration.storage_faults import MiB, chunk_file, hashes_of, make_admin, upload
from tests.integration.test_resilience_admin import cli


def test_admin_check_is_clean_then_names_each_kind_of_damage(tmp_path: Path) -> None:
    # No repair, audit or GC while we damage things: the check must see the damage as made.
    quiet = {"repair_interval": 3600, "gc_interval": 0}
    with TestCluster(tmp_path, env=quiet, node_env={"scrub_rate": 0}) as cluster:
        rng = random.Random(5)
        files = {"/a/one": rng.randbytes(MiB + 5), "/a/two": rng.randbytes(300_000),
                 "/three": rng.randbytes(2000)}
        with httpx.Client(base_url=cluster.url, timeout=60) as client:
            alice = bearer(signup_and_login(client, "alice"))
            for path, data in files.items():
                assert upload(client, alice, path, data).status_code == 201
            root = make_admin(cluster, client, "root")
            clean = client.post("/api/v1/admin/check", headers=root, json={"nodes": True})
        assert clean.status_code == 200 and clean.json()["ok"], clean.text
        names = {f["name"]: f["violations"] for f in clean.json()["findings"]}
        assert "version_chunks_on_nodes" in names and not any(names.values()), names

        one_copy_lost, all_copies_lost = hashes_of(files["/a/one"])[:2]
        rows_gone = hashes_of(files["/a/two"])[0]
        holders = [n.name for n in cluster.nodes
                   if chunk_file(cluster, n.name, all_copies_lost).exists()]
        for name in holders:
            chunk_file(cluster, name, all_copies_lost).unlink()
        one_holder = next(n.name for n in cluster.nodes
                          if chunk_file(cluster, n.name, one_copy_lost).exists())
        chunk_file(cluster, one_holder, one_copy_lost).unlink()
        db = Database(cluster.database_url)
        try:
            with db.write() as conn:
                conn.execute(delete(replicas).where(replicas.c.chunk_hash == rows_gone))
                middle = conn.execute(select(journal.c.seq).order_by(journal.c.seq)
                                      .limit(1).offset(2)).scalar_one()
                conn.execute(delete(journal).where(journal.c.seq == middle))
                conn.execute(update(entries).where(entries.c.path == "/three")
                             .values(size=1))
                conn.execute(delete(entries).where(entries.c.path == "/a"))
        finally:
            db.dispose()

        report = cluster.check(nodes=True)
        must = {f.name: f for f in report.must_violations}
        assert set(must) == {"version_chunks", "version_chunks_on_nodes", "journal_gapless",
                             "current_version", "live_parents"}
        assert must["version_chunks"].sample == [rows_gone]
        assert sorted(must["version_chunks_on_nodes"].sample) == sorted(
            [rows_gone, all_copies_lost])
        assert must["live_parents"].violations == 2  # /a/one and /a/two
        should = {f.name: f for f in report.should_violations}
        # Each remaining copy: one of ``one_copy_lost`` and both of ``all_copies_lost``.
        assert should["replicas_on_nodes"].violations == 3
        assert "replication" in should  # rows_gone has no replica rows left

        home = tmp_path / "home"
        assert cli(cluster, home, "login", "root", "--password-stdin",
                   stdin=PASSWORD + "\n").returncode == 0
        broken = cli(cluster, home, "admin", "check")
        assert broken.returncode == 9
        assert "journal_gapless" in broken.stderr and "version_chunks_on_nodes" not in \
            broken.stderr  # without --nodes the copies are not asked for
        cluster.expect_broken(*must)
