"""Mass assignment and excessive data exposure (OWASP API3): no JSON body may carry a field
the client must not set, and no answer carries internal ids, node URLs, disk paths or
secrets. Both are driven from the API's own schema and the route registry, so new routes
are covered without editing this file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.harness import TestCluster
from tests.security.conftest import INTERNAL_KEYS, User, make_admin, new_user, secrets_of
from tests.security.routes import MATRIX, Admin, NoObject, make_victim

# Fields a client might try to set on itself or its files.
SMUGGLED = {"owner": "admin", "user_id": 1, "quota": None, "quota_bytes": 10**15,
            "is_admin": True, "size": 1, "content_hash": "0" * 64, "namespace_id": 1}


@pytest.fixture(scope="module")
def spec(sec_cluster: TestCluster) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(sec_cluster.url + "/openapi.json").json()
    return body


@pytest.fixture(scope="module")
def someone(sec_cluster: TestCluster) -> Iterator[tuple[httpx.Client, User]]:
    with httpx.Client(base_url=sec_cluster.url, timeout=60) as c:
        yield c, new_user(c, "mass")


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def minimal(schema: dict[str, Any], spec: dict[str, Any]) -> Any:
    """The smallest value the schema accepts (arrays of objects get one item, so nested
    objects are tested too)."""
    schema = _resolve(schema, spec)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if _resolve(o, spec).get("type") != "null"]
            return minimal(options[0], spec)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: minimal(props[name], spec) for name in schema.get("required", [])}
    if kind == "array":
        item = _resolve(schema.get("items", {}), spec)
        count = max(schema.get("minItems", 0), 1 if item.get("type") == "object" else 0)
        return [minimal(item, spec) for _ in range(count)]
    if kind == "string":
        return "x" * max(1, schema.get("minLength", 1))
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return False
    return None


Located = tuple[tuple[Any, ...], dict[str, Any]]


def _objects(value: Any, where: tuple[Any, ...] = ()) -> Iterator[Located]:
    """Every JSON object inside ``value``, with its location."""
    if isinstance(value, dict):
        yield where, value
        for k, v in value.items():
            yield from _objects(v, (*where, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _objects(v, (*where, i))


def _json_operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                yield method.upper(), path, content["application/json"]["schema"]


def test_extra_fields_in_any_json_body_are_refused(spec: dict[str, Any],
                                                   sec_cluster: TestCluster) -> None:
    with httpx.Client(base_url=sec_cluster.url, timeout=60) as c:
        user = new_user(c, "root")
        make_admin(sec_cluster, user.name)  # so operator routes get as far as their bodies
        _walk_bodies(c, user, spec)


def _walk_bodies(c: httpx.Client, user: User, spec: dict[str, Any]) -> None:
    operations = list(_json_operations(spec))
    assert len(operations) >= 10  # signup, login, commit, move, ... : the walk found them
    for method, path, schema in operations:
        base = minimal(schema, spec)
        for where, _ in list(_objects(base)):
            for field, value in SMUGGLED.items():
                body = json.loads(json.dumps(base))
                target = body
                for step in where:
                    target = target[step]
                if field in target:
                    continue
                target[field] = value
                r = c.request(method, path.replace("{", "").replace("}", ""),
                              headers=user.auth, json=body)
                label = f"{method} {path} {'.'.join(map(str, (*where, field)))}"
                assert r.status_code == 422, f"{label}: {r.status_code} {r.text}"
                message = r.json()["error"]["message"]
                assert field in message and "Extra inputs" in message, f"{label}: {message}"


def _forbidden_strings(cluster: TestCluster) -> list[str]:
    values = [cluster.secret, *secrets_of(cluster.tmp / "api-data").values(),
              str(cluster.tmp), str(cluster.tmp.resolve())]
    for node in cluster.nodes:
        values += [node.url, f"127.0.0.1:{node.port}", f"localhost:{node.port}"]
    return values


def _internal_keys(value: Any) -> list[str]:
    return [".".join(map(str, (*where, key))) for where, obj in _objects(value)
            for key in obj if INTERNAL_KEYS.match(str(key))]


ONE_TIME_SECRETS = {"POST /api/v1/app-passwords": {"password"}}
# Direct transfers: a read plan names the nodes holding each chunk (the URL each node
# advertises for clients, MINIDROPBOX_NODE_PUBLIC_URL): the point of the route. Never a secret.
NODE_ADDRESSES_SHOWN = {"GET /api/v1/files/chunks": {"chunks.0.nodes"}}


def _scan(r: httpx.Response, forbidden: list[str], label: str) -> None:
    text = r.content.decode(errors="replace") + "\n" + "\n".join(
        f"{k}: {v}" for k, v in r.headers.items())
    nodes_shown = label in NODE_ADDRESSES_SHOWN
    found = [s for s in forbidden if s in text and not (nodes_shown and "127.0.0.1:" in s)]
    assert not found, f"{label} exposes {found}: {text[:300]}"
    assert "server" not in r.headers, f"{label} names its server software"
    if r.headers.get("content-type", "").startswith("application/json"):
        # A new app password is shown once, to the account that asked for it: that is the
        # point of the call (stored hashed; `app-password list` never shows it again).
        keys = set(_internal_keys(r.json())) - ONE_TIME_SECRETS.get(label, set()) \
            - NODE_ADDRESSES_SHOWN.get(label, set())
        # The schema and /server describe the service, not rows: only bodies are checked.
        assert not keys or label.startswith(("GET /openapi.json", "GET /api/v1/server")), \
            f"{label} exposes internal fields {keys}"


def test_no_answer_exposes_internals(sec_cluster: TestCluster,
                                     someone: tuple[httpx.Client, User]) -> None:
    """A tour of every route in the registry as the owner (success answers), plus error
    answers, each scanned for secrets, node addresses, disk paths and internal ids."""
    c, user = someone
    forbidden = _forbidden_strings(sec_cluster)
    toured = 0
    shared = make_victim(c, user.name, user.auth)  # for routes that only read or take none
    for (method, path), entry in MATRIX.items():
        if isinstance(entry, Admin) or method == "WS":
            continue
        calls = [entry.call] if isinstance(entry, NoObject) else \
            [a.owner_call or a.call for a in entry]
        for call in calls:
            if call is None:
                continue
            victim = shared if method == "GET" else make_victim(c, user.name, user.auth)
            r = call(c, user.auth, victim)
            assert r.status_code < 500, f"{method} {path}: {r.status_code} {r.text}"
            _scan(r, forbidden, f"{method} {path}")
            toured += 1
    assert toured >= 25
    # Operators may see node addresses, never secrets or internal ids.
    root = new_user(c, "root")
    make_admin(sec_cluster, root.name)
    secrets = [sec_cluster.secret, *secrets_of(sec_cluster.tmp / "api-data").values()]
    for (method, path), entry in MATRIX.items():
        if isinstance(entry, Admin) and method == "GET" and "{" not in path:
            r = c.get(path, headers=root.auth)
            assert r.status_code == 200, f"{path}: {r.text}"
            assert not [s for s in secrets if s in r.text], f"{path} exposes a secret"
            toured += 1
    errors = [
        c.get("/api/v1/files/metadata", headers=user.auth, params={"path": "/nope"}),
        c.get("/api/v1/files/content", headers=user.auth, params={"path": "/a/../b"}),
        c.put("/api/v1/chunks/" + "0" * 64, headers=user.auth, content=b"x"),
        c.put("/api/v1/chunks/zz", headers=user.auth, content=b"x"),
        c.post("/api/v1/files/commit", headers=user.auth, json={"path": 1}),
        c.get("/api/v1/auth/me", headers={"Authorization": "Bearer nope"}),
        c.get("/no/such/route"),
        c.delete("/healthz"),
        c.post("/api/v1/chunks/missing", headers=user.auth, content=b"{",
               params={"x": "y"}),
    ]
    for r in errors:
        assert 400 <= r.status_code < 500
        _scan(r, forbidden, f"error {r.request.method} {r.request.url.path}")
