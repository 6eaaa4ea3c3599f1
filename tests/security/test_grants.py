"""Grants and receipts at real nodes and a real API (docs/DESIGN.md, "Direct transfers").

A grant opens exactly one chunk, one method, on the nodes it names, for one account, until it
expires; a receipt counts only for the account it was issued to. Grants minted here with the
cluster secret stand for what an attacker can never make: each differs from a real one in one
field, and every node refuses it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from minidropbox.core.grants import GET, PUT, KeyRing, Receipt, make_grant
from tests.harness import TestCluster
from tests.integration.direct_protocol import (
    DIRECT,
    present,
    put_at,
    send_direct,
    upload_grants,
    wait_for_grants,
)
from tests.security.conftest import User, new_user


@pytest.fixture(scope="module")
def people(sec_cluster: TestCluster) -> Iterator[tuple[httpx.Client, User, User]]:
    with httpx.Client(base_url=sec_cluster.url, timeout=60) as c:
        alice, mallory = new_user(c, "alice"), new_user(c, "mallory")
        wait_for_grants(c, alice.auth)
        yield c, alice, mallory


def node_ids(cluster: TestCluster) -> dict[str, str]:
    """URL → the id each node reports (only with the cluster secret)."""
    auth = {"Authorization": f"Bearer {cluster.secret}"}
    return {n.url: httpx.get(n.url + "/healthz", headers=auth).json()["node_id"]
            for n in cluster.nodes}


def account_of(c: httpx.Client, user: User) -> int:
    """The account id a grant names (read from a real grant: clients never need it)."""
    blob = secrets.token_bytes(DIRECT)
    [upload] = upload_grants(c, user.auth, [blob]).values()
    return int(payload_of(upload["grant"])["a"])


def payload_of(token: str) -> dict[str, object]:
    payload = token.split(".")[0]
    body: dict[str, object] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return body


def mint(cluster: TestCluster, **fields: object) -> str:
    ring = KeyRing.from_material("grant", [("c", cluster.secret)])
    return make_grant(ring, **fields)  # type: ignore[arg-type]


def code(r: httpx.Response) -> str:
    return str(r.json()["error"]["code"])


def test_a_grant_opens_only_its_chunk_method_node_and_time(
        sec_cluster: TestCluster, people: tuple[httpx.Client, User, User]) -> None:
    c, alice, _ = people
    data = secrets.token_bytes(DIRECT)
    other = secrets.token_bytes(DIRECT)
    h, h_other = hashlib.sha256(data).hexdigest(), hashlib.sha256(other).hexdigest()
    upload = upload_grants(c, alice.auth, [data])[h]
    first, second = upload["nodes"][:2]
    # Replayed for another hash: refused before a byte is kept.
    r = put_at(first, h_other, other, upload["grant"])
    assert r.status_code == 403 and code(r) == "invalid_grant"
    # A PUT grant does not read, delete or list.
    auth = {"Authorization": f"Grant {upload['grant']}"}
    assert httpx.get(f"{first}/chunks/{h}", headers=auth).status_code == 403
    assert httpx.delete(f"{first}/chunks/{h}", headers=auth).status_code == 401
    assert httpx.get(f"{first}/chunks", headers=auth).status_code == 401
    assert httpx.get(f"{first}/healthz", headers=auth).status_code == 401
    ids = node_ids(sec_cluster)
    account = account_of(c, alice)
    base = {"account": account, "chunk": h, "max_size": len(data), "method": PUT,
            "expires": int(time.time()) + 300}
    # Against another node: a grant naming only the second node, used at the first.
    r = put_at(first, h, data, mint(sec_cluster, **{**base, "nodes": [ids[second]]}))
    assert r.status_code == 403 and code(r) == "invalid_grant"
    # After expiry.
    r = put_at(first, h, data, mint(sec_cluster, **{**base, "nodes": [ids[first]],
                                                   "expires": int(time.time()) - 1}))
    assert r.status_code == 403 and "expired" in r.json()["error"]["message"]
    # Signed with another key (a guessed or old secret).
    ring = KeyRing.from_material("grant", [("c", "not-the-cluster-secret-0123")])
    forged = make_grant(ring, **{**base, "nodes": [ids[first]]})  # type: ignore[arg-type]
    assert put_at(first, h, data, forged).status_code == 403
    # A tampered field (the size ceiling raised) breaks the signature.
    mac = upload["grant"].split(".")[1]
    body = {**payload_of(upload["grant"]), "n": 10**9}
    raw = base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":"),
                                              sort_keys=True).encode()).decode().rstrip("=")
    assert put_at(first, h, data, f"{raw}.{mac}").status_code == 403
    # Nothing above left a file on a node; the real grant still works.
    for url in (first, second):
        assert httpx.head(f"{url}/chunks/{h}",
                          headers={"Authorization": f"Bearer {sec_cluster.secret}"}
                          ).status_code == 404
    assert put_at(first, h, data, upload["grant"]).status_code == 201
    # A read grant for it reads, and does not write.
    read = mint(sec_cluster, **{**base, "nodes": [ids[first]], "method": GET})
    got = httpx.get(f"{first}/chunks/{h}", headers={"Authorization": f"Grant {read}"})
    assert got.status_code == 200 and got.content == data
    assert put_at(first, h, data, read).status_code == 403


def test_writes_need_the_secret_or_a_grant(sec_cluster: TestCluster) -> None:
    data = b"no credentials"
    h = hashlib.sha256(data).hexdigest()
    for headers in ({}, {"Authorization": "Grant"}, {"Authorization": "Grant x.y"},
                    {"Authorization": "Bearer not-the-secret"}):
        for node in sec_cluster.nodes:
            r = httpx.put(f"{node.url}/chunks/{h}", content=data, headers=headers)
            assert r.status_code in (401, 403), (headers, r.status_code)


def test_receipts_are_bound_to_their_account(
        people: tuple[httpx.Client, User, User]) -> None:
    c, alice, mallory = people
    data = secrets.token_bytes(DIRECT)
    h = hashlib.sha256(data).hexdigest()
    receipts = send_direct(c, alice.auth, data)
    # Moved to another account: refused, and the chunk stays missing for that account.
    r = present(c, mallory.auth, receipts)
    assert r.status_code == 400 and code(r) == "invalid_receipt"
    assert c.post("/api/v1/chunks/missing", headers=mallory.auth,
                  json={"hashes": [h]}).json()["missing"] == [h]
    # Forged: signed with a key that is not the nodes'.
    fake_ring = KeyRing.from_material("receipt", [("c", "not-the-cluster-secret-0123")])
    forged = [Receipt(0, h, len(data), "n", int(time.time()), 0).sign(fake_ring)]
    assert present(c, mallory.auth, forged).status_code == 400
    assert present(c, mallory.auth, ["garbage"]).status_code == 400
    # A grant is not a receipt.
    upload = upload_grants(c, mallory.auth, [data])[h]
    assert present(c, mallory.auth, [upload["grant"]]).status_code == 400
    # The owner's receipts count for the owner.
    assert present(c, alice.auth, receipts).json()["recorded"] == [h]


def test_no_client_ever_sees_the_cluster_secret(
        sec_cluster: TestCluster, people: tuple[httpx.Client, User, User]) -> None:
    c, alice, _ = people
    data = secrets.token_bytes(DIRECT)
    h = hashlib.sha256(data).hexdigest()
    r = c.post("/api/v1/chunks/missing", headers=alice.auth,
               json={"hashes": [h], "sizes": [len(data)]})
    answers = [r.text]
    receipts = send_direct(c, alice.auth, data)
    answers.append(present(c, alice.auth, receipts).text)
    answers.append(c.post("/api/v1/files/commit", headers=alice.auth, json={
        "path": "/secret-check.bin", "size": len(data), "chunks": [h],
        "parent_version": None}).text)
    answers.append(c.get("/api/v1/files/chunks", headers=alice.auth,
                         params={"path": "/secret-check.bin"}).text)
    answers += receipts
    for text in answers:
        assert sec_cluster.secret not in text


def put_chain(url: str, chunk_hash: str, data: bytes, headers: dict[str, str],
              copies: int = 2) -> httpx.Response:
    return httpx.put(f"{url}/chunks/{chunk_hash}", content=data, timeout=30,
                     headers={**headers, "Minidropbox-Copies": str(copies)})


def held_by(cluster: TestCluster, chunk_hash: str) -> set[str]:
    auth = {"Authorization": f"Bearer {cluster.secret}"}
    return {n.url for n in cluster.nodes
            if httpx.head(f"{n.url}/chunks/{chunk_hash}", headers=auth).status_code == 200}


def test_a_chain_goes_only_where_the_grant_says(
        sec_cluster: TestCluster, people: tuple[httpx.Client, User, User]) -> None:
    """A node forwards a PUT only under a grant, only to the URLs the API signed into it,
    and the next node checks that grant itself: a forwarded write it does not name is
    refused there."""
    c, alice, _ = people
    ids = node_ids(sec_cluster)
    first, second = sec_cluster.nodes[0].url, sec_cluster.nodes[1].url
    data = secrets.token_bytes(DIRECT)
    h = hashlib.sha256(data).hexdigest()
    base = {"account": account_of(c, alice), "chunk": h, "max_size": len(data),
            "method": PUT, "expires": int(time.time()) + 300}
    # The grant names the second node's URL but not its id: the first node takes the bytes
    # and forwards them, and the second node refuses the forwarded write.
    grant = mint(sec_cluster, **base, nodes=[ids[first], "0" * 16], urls=[first, second])
    r = put_chain(first, h, data, {"Authorization": f"Grant {grant}"})
    assert r.status_code == 201, r.text
    assert [item["node"] for item in r.json()["chain"]] == [0]
    assert held_by(sec_cluster, h) == {first}
    # Pointed elsewhere by the client: the URLs are under the MAC.
    body = {**payload_of(grant), "u": [first, "http://127.0.0.1:9"]}
    raw = base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":"),
                                              sort_keys=True).encode()).decode().rstrip("=")
    r = put_chain(first, h, data, {"Authorization": f"Grant {raw}.{grant.split('.')[1]}"})
    assert r.status_code == 403 and code(r) == "invalid_grant"
    # The cluster secret asks for no chain (the API writes its copies itself).
    other = secrets.token_bytes(DIRECT)
    h_other = hashlib.sha256(other).hexdigest()
    r = put_chain(first, h_other, other, {"Authorization": f"Bearer {sec_cluster.secret}"})
    assert r.status_code == 201 and "chain" not in r.json()
    assert held_by(sec_cluster, h_other) == {first}
    # A real grant: the first node it names passes the chunk on; both receipts count.
    blob = secrets.token_bytes(DIRECT)
    h_blob = hashlib.sha256(blob).hexdigest()
    upload = upload_grants(c, alice.auth, [blob])[h_blob]
    r = put_chain(upload["nodes"][0], h_blob, blob, {"Authorization": f"Grant {upload['grant']}"})
    assert r.status_code == 201, r.text
    chain = r.json()["chain"]
    assert [item["node"] for item in chain] == [0, 1]
    assert held_by(sec_cluster, h_blob) == set(upload["nodes"][:2])
    r = present(c, alice.auth, [item["receipt"] for item in chain])
    assert r.json() == {"recorded": [h_blob], "refused": []}


def test_corrupt_copy_reports_are_bounded_per_account(
        people: tuple[httpx.Client, User, User]) -> None:
    """Each report costs the API a chunk read: an account gets a few a minute, then 429."""
    c, _, mallory = people
    h = hashlib.sha256(b"anything").hexdigest()
    answers = [c.post(f"/api/v1/chunks/{h}/corrupt", headers=mallory.auth,
                      json={"node": "http://127.0.0.1:9"}).status_code for _ in range(31)]
    assert answers == [202] * 30 + [429]
    assert c.post("/api/v1/chunks/not-a-hash/corrupt", headers=mallory.auth,
                  json={"node": "x"}).status_code in (400, 429)
