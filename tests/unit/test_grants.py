"""Grants and receipts (core/grants.py): each binds exactly what it says, and nothing signed by
another key, for another purpose, or changed in any field is accepted."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from minidropbox.core.errors import InvalidGrant, InvalidReceipt
from minidropbox.core.grants import (
    GET,
    PUT,
    KeyRing,
    Receipt,
    make_grant,
    open_grant,
    open_receipt,
)

H = hashlib.sha256(b"chunk").hexdigest()
OTHER = hashlib.sha256(b"other").hexdigest()
NOW = 1_000_000.0
GRANTS = KeyRing.from_material("grant", [("c", "cluster-secret-0123456789")])
RECEIPTS = KeyRing.from_material("receipt", [("c", "cluster-secret-0123456789")])


def grant(**overrides: object) -> str:
    fields: dict[str, object] = {"account": 7, "chunk": H, "max_size": 100,
                                 "nodes": ["n1", "n2"], "method": PUT, "expires": int(NOW + 300),
                                 "fence": 4}
    fields.update(overrides)
    return make_grant(GRANTS, **fields)  # type: ignore[arg-type]


def check(token: str, *, chunk: str = H, method: str = PUT, node: str = "n2",
          now: float = NOW, size: int | None = 100, ring: KeyRing = GRANTS) -> None:
    open_grant(ring, token, chunk=chunk, method=method, node_id=node, now=now, size=size)


def tamper(token: str, **changes: object) -> str:
    payload, mac = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body.update(changes)
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=") + "." + mac


def test_a_grant_allows_exactly_what_it_names() -> None:
    token = grant()
    got = open_grant(GRANTS, token, chunk=H, method=PUT, node_id="n1", now=NOW, size=99)
    assert (got.account, got.chunk, got.max_size, got.nodes, got.fence) == (
        7, H, 100, ("n1", "n2"), 4)


def test_a_chain_goes_only_to_the_nodes_after_this_one() -> None:
    urls = ["http://n1", "http://n2", "http://n3"]
    token = grant(nodes=["n1", "n2", "n3"], urls=urls)
    got = open_grant(GRANTS, token, chunk=H, method=PUT, node_id="n1", now=NOW, size=99)
    assert got.next_hops("n1") == [(1, "http://n2"), (2, "http://n3")]
    assert got.next_hops("n3") == [] and got.next_hops("n9") == []
    # Without URLs, nobody forwards; URLs go with PUT grants only, one per node.
    assert open_grant(GRANTS, grant(), chunk=H, method=PUT, node_id="n1", now=NOW
                      ).next_hops("n1") == []
    with pytest.raises(ValueError):
        grant(urls=urls)
    with pytest.raises(ValueError):
        grant(nodes=["n1", "n2", "n3"], urls=urls, method=GET)
    with pytest.raises(InvalidGrant):
        check(tamper(token, u=urls[:2]))


@pytest.mark.parametrize("kwargs", [
    {"chunk": OTHER},  # replayed for another hash
    {"method": GET},  # a PUT grant used to read
    {"node": "n3"},  # against another node
    {"now": NOW + 300},  # at expiry
    {"now": NOW + 10_000},  # after it
    {"size": 101},  # more bytes than granted
    {"ring": KeyRing.from_material("grant", [("c", "another-cluster-secret-012")])},
    {"ring": KeyRing.from_material("receipt", [("c", "cluster-secret-0123456789")])},
])
def test_a_grant_refuses_everything_else(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidGrant):
        check(grant(), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("field,value", [
    ("h", OTHER), ("a", 8), ("n", 10**9), ("d", ["n1", "n2", "n3"]), ("m", GET),
    ("e", int(NOW + 10**6)), ("f", 6), ("k", "other"), ("t", "r"),
    ("u", ["http://n1", "http://elsewhere"])])
def test_a_tampered_grant_is_refused(field: str, value: object) -> None:
    with pytest.raises(InvalidGrant):
        check(tamper(grant(), **{field: value}), chunk=OTHER if field == "h" else H,
              method=GET if field == "m" else PUT)


@pytest.mark.parametrize("token", ["", "x", "x.y", "." * 5000, "é.é", grant() + "A",
                                   grant().split(".")[0] + ".", "not-base64!.AAAA"])
def test_garbage_is_refused_without_a_crash(token: str) -> None:
    with pytest.raises(InvalidGrant):
        check(token)


def test_keys_rotate_without_a_flag_day() -> None:
    old = KeyRing.from_material("grant", [("k1", "first-secret-0123456789")])
    both = KeyRing.from_material("grant", [("k2", "second-secret-0123456789"),
                                           ("k1", "first-secret-0123456789")])
    new_only = KeyRing.from_material("grant", [("k2", "second-secret-0123456789")])
    issued_before = make_grant(old, account=1, chunk=H, max_size=1, nodes=["n"], method=GET,
                               expires=int(NOW + 60))
    issued_after = make_grant(both, account=1, chunk=H, max_size=1, nodes=["n"], method=GET,
                              expires=int(NOW + 60))
    for token in (issued_before, issued_after):
        check(token, method=GET, node="n", size=None, ring=both)
    check(issued_after, method=GET, node="n", size=None, ring=new_only)
    with pytest.raises(InvalidGrant):
        check(issued_before, method=GET, node="n", size=None, ring=new_only)


def receipt(**overrides: object) -> str:
    fields: dict[str, object] = {"account": 7, "chunk": H, "size": 100, "node": "n1",
                                 "issued": int(NOW), "fence": 4}
    fields.update(overrides)
    return Receipt(**fields).sign(RECEIPTS)  # type: ignore[arg-type]


def test_a_receipt_binds_its_account_and_age() -> None:
    got = open_receipt(RECEIPTS, receipt(), account=7, now=NOW + 10, max_age=900)
    assert (got.chunk, got.size, got.node, got.fence) == (H, 100, "n1", 4)
    with pytest.raises(InvalidReceipt, match="another account"):
        open_receipt(RECEIPTS, receipt(), account=8, now=NOW, max_age=900)
    with pytest.raises(InvalidReceipt, match="too old"):
        open_receipt(RECEIPTS, receipt(), account=7, now=NOW + 901, max_age=900)


@pytest.mark.parametrize("field,value", [("a", 8), ("h", OTHER), ("s", 1), ("d", "n2"),
                                         ("i", int(NOW) + 5), ("f", 2), ("t", "g")])
def test_a_forged_or_altered_receipt_is_refused(field: str, value: object) -> None:
    with pytest.raises(InvalidReceipt):
        open_receipt(RECEIPTS, tamper(receipt(), **{field: value}), account=7, now=NOW,
                     max_age=900)


def test_a_grant_is_never_a_receipt_nor_the_reverse() -> None:
    # Same key material, different purposes: a client holding a grant cannot present it as
    # a receipt (and a receipt opens nothing at a node).
    with pytest.raises(InvalidReceipt):
        open_receipt(RECEIPTS, grant(), account=7, now=NOW, max_age=900)
    with pytest.raises(InvalidGrant):
        check(receipt())
