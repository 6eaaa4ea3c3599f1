"""Storage nodes trust only the cluster secret: every node route refuses anything else with
401 (even unknown paths: no route map for probers), a user's token included; the secret never
shows up in logs or answers. Connections that never finish a request head are closed, and
what a request names (a chunk, a byte range) is parsed strictly."""

from __future__ import annotations

import hashlib
import select
import socket
import time
import uuid
from pathlib import Path

import httpx

from minidropbox.node.app import create_node_app
from minidropbox.node.settings import NodeSettings
from tests.harness import TestCluster, start_node
from tests.security.conftest import new_user, secrets_of


def _node_routes(tmp: Path) -> list[tuple[str, str]]:
    """Every (method, path) the node app serves, path parameters filled in."""
    app = create_node_app(NodeSettings(dir=tmp / "probe", cluster_secret="x" * 32))
    found = []
    for route in app.routes:
        path = getattr(route, "path", "")
        for method in sorted(getattr(route, "methods", None) or ()):
            found.append((method, path.replace("{name}", "0" * 64).replace("{file}", "f")))
    return found


def test_every_node_route_needs_the_cluster_secret(sec_cluster: TestCluster,
                                                   client: httpx.Client,
                                                   tmp_path: Path) -> None:
    routes = _node_routes(tmp_path)
    assert len(routes) >= 7, routes  # the walk found the routes
    routes += [("GET", "/no/such/route"), ("POST", "/chunks"), ("GET", "/")]
    user = new_user(client, "nodes")
    jwt_secret = secrets_of(sec_cluster.tmp / "api-data")["jwt_secret"]
    secret = sec_cluster.secret
    refused = {
        "no header": {},
        "empty bearer": {"Authorization": "Bearer"},
        "wrong secret": {"Authorization": "Bearer " + "w" * len(secret)},
        "secret prefix": {"Authorization": "Bearer " + secret[:-1]},
        "secret with a suffix": {"Authorization": "Bearer " + secret + "x"},
        "other case": {"Authorization": "Bearer " + secret.upper()},
        "basic scheme": {"Authorization": "Basic " + secret},
        "secret without scheme": {"Authorization": secret},
        "user access token": user.auth,
        "jwt secret": {"Authorization": "Bearer " + jwt_secret},
        "secret in another header": {"X-Cluster-Secret": secret},
    }
    node = sec_cluster.nodes[0]
    with httpx.Client(base_url=node.url, timeout=30) as c:
        for method, path in routes:
            for name, headers in refused.items():
                r = c.request(method, path, headers=headers, content=b"x" if method == "PUT"
                              else None)
                assert r.status_code == 401, f"{method} {path} with {name}: {r.status_code}"
                assert secret not in r.text and secret not in str(r.headers)
        # The control: the same routes with the secret are not refused.
        ok = c.get("/healthz", headers={"Authorization": f"Bearer {secret}"})
        assert ok.status_code == 200
        missing = c.get("/chunks/" + "0" * 64, headers={"Authorization": f"Bearer {secret}"})
        assert missing.status_code == 404


def test_secrets_never_reach_the_logs(sec_cluster: TestCluster, client: httpx.Client) -> None:
    # Make the processes log something: failed node calls, bad tokens, errors.
    user = new_user(client, "logs")
    node = sec_cluster.nodes[0]
    httpx.put(node.url + "/chunks/" + "0" * 64, content=b"x",
              headers={"Authorization": "Bearer " + sec_cluster.secret + "x"})
    client.get("/api/v1/auth/me", headers={"Authorization": "Bearer " + sec_cluster.secret})
    client.put("/api/v1/chunks/" + "1" * 64, headers=user.auth, content=b"not those bytes")
    logs = sorted((sec_cluster.tmp / "logs").glob("*.log"))
    assert {p.stem for p in logs} >= {"api", *(n.name for n in sec_cluster.nodes)}
    secrets = [sec_cluster.secret, *secrets_of(sec_cluster.tmp / "api-data").values(),
               user.tokens["access_token"], user.tokens["refresh_token"]]
    for log in logs:
        text = log.read_text(errors="replace")
        leaked = [s[:8] + "..." for s in secrets if s in text]
        assert not leaked, f"{log.name} contains secrets {leaked}"


def test_node_range_and_chunk_names_are_parsed_strictly(sec_cluster: TestCluster) -> None:
    data = b"range test chunk " + uuid.uuid4().bytes
    name = hashlib.sha256(data).hexdigest()
    auth = {"Authorization": f"Bearer {sec_cluster.secret}"}
    with httpx.Client(base_url=sec_cluster.nodes[0].url, headers=auth, timeout=30) as c:
        assert c.put(f"/chunks/{name}", content=data).status_code in (200, 201)
        # A range of thousands of digits is not one we serve: the whole chunk, never a 500.
        for header in ("bytes=" + "9" * 5000 + "-", "bytes=0-" + "1" * 5000,
                       "bytes=-" + "7" * 5000):
            r = c.get(f"/chunks/{name}", headers={"Range": header})
            assert r.status_code == 200 and r.content == data, (header[:20], r.status_code)
        r = c.get(f"/chunks/{name}", headers={"Range": "bytes=1-3"})
        assert r.status_code == 206 and r.content == data[1:4]
        # A trailing newline is not part of a chunk name ("$" matched before it).
        for method in ("GET", "HEAD", "PUT", "DELETE"):
            r = c.request(method, f"/chunks/{name}%0A", content=data if method == "PUT"
                          else None)
            assert r.status_code == 400, (method, r.status_code, r.text)
        assert c.get(f"/chunks/{name}").content == data


def test_node_closes_connections_that_never_finish_a_head(tmp_path: Path) -> None:
    head_timeout = 1.0
    node = start_node(tmp_path, "slow-node", "s" * 40, env={"head_timeout": head_timeout})
    try:
        slow = [socket.create_connection(("127.0.0.1", node.port)) for _ in range(30)]
        for s in slow:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        start = time.monotonic()
        closed: set[int] = set()
        while time.monotonic() - start < head_timeout + 5 and len(closed) < len(slow):
            for i, s in enumerate(slow):
                if i not in closed and _peer_closed(s):
                    closed.add(i)
            time.sleep(0.1)
        for s in slow:
            s.close()
        assert len(closed) == len(slow), f"{len(slow) - len(closed)} slow heads still open"
        assert time.monotonic() - start >= head_timeout * 0.8
        r = httpx.get(node.url + "/healthz", headers={"Authorization": "Bearer " + "s" * 40})
        assert r.status_code == 200
    finally:
        node.stop()


def test_node_caps_how_many_connections_wait_for_a_head(tmp_path: Path) -> None:
    # The deadline is long here: only the caps can close these connections in time.
    per_client, overall = 20, 30
    node = start_node(tmp_path, "capped-node", "s" * 40, env={
        "head_timeout": 120, "pending_heads": overall, "pending_heads_per_client": per_client})
    opened: list[socket.socket] = []
    try:
        def flood(source: str, count: int) -> list[socket.socket]:
            conns = [socket.create_connection(("127.0.0.1", node.port), timeout=30,
                                              source_address=(source, 0))
                     for _ in range(count)]
            for s in conns:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            opened.extend(conns)
            return conns

        def still_open(conns: list[socket.socket], at_most: int) -> int:
            deadline = time.monotonic() + 30
            closed: set[int] = set()
            while True:
                closed |= {i for i, s in enumerate(conns) if i not in closed and _peer_closed(s)}
                if len(conns) - len(closed) <= at_most or time.monotonic() > deadline:
                    return len(conns) - len(closed)
                time.sleep(0.1)

        one = flood("127.0.0.1", 200)
        assert 0 < still_open(one, per_client) <= per_client
        # Honest requests from the same address still get through (their heads are whole).
        auth = {"Authorization": "Bearer " + "s" * 40}
        for _ in range(5):
            assert httpx.get(node.url + "/healthz", headers=auth, timeout=30).status_code == 200
        # Other addresses have caps of their own, and all of them together the overall one.
        two, three = flood("127.0.0.2", 20), flood("127.0.0.3", 20)
        assert 0 < still_open(one + two + three, overall) <= overall
        assert httpx.get(node.url + "/healthz", headers=auth, timeout=30).status_code == 200
    finally:
        for s in opened:
            s.close()
        node.stop()


def _peer_closed(sock: socket.socket) -> bool:
    try:
        while select.select([sock], [], [], 0)[0]:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    return False
