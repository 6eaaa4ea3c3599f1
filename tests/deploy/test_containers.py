"""The compose stack for real: images built, every service started by Docker and exercised.

Runs only under ``make test-containers`` (``MINIDROPBOX_TEST_CONTAINERS=1``), which makes sure
a Docker engine and the base images are there (deploy/with-docker.sh). The stack is a copy of
this checkout's compose.yaml under its own project name, ports and subnet, with a PostgreSQL
password full of URL delimiters; it is torn down (containers, network, volumes) at the end,
and nothing else is touched. The tests run in order, each on what the previous left:

health of every service → sign-up, upload, download over HTTPS through the proxy (forwarded
headers believed from it only) → the CLI in the ``client`` container, and on this host over
HTTPS → a snapshot by the ``backup`` container → kill -9 of one storage node (the API keeps
serving; Docker restarts it) → the whole stack down and up, data kept.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import BIN, free_port

pytestmark = pytest.mark.skipif(os.environ.get("MINIDROPBOX_TEST_CONTAINERS") != "1",
                                reason="needs Docker: run `make test-containers`")

ROOT = Path(__file__).resolve().parents[2]
# What `docker compose build` needs from the checkout (.dockerignore trims the rest).
CONTEXT = ["Dockerfile", ".dockerignore", "compose.yaml", ".env.example", "pyproject.toml",
           "README.md", "requirements.lock", "src", "deploy"]
SERVICES = ["postgres", "storage-1", "storage-2", "storage-3", "api", "proxy"]
PASSWORD = "correct horse battery staple"
MiB = 1024 * 1024


def compose_command() -> list[str]:
    """``docker compose`` (v2) where it exists, else Debian's ``docker-compose`` (1.28+)."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    found = shutil.which("docker-compose")
    assert found, "neither docker compose nor docker-compose is installed"
    return [found]


class Stack:
    """One compose project built from a copy of this checkout, driven like an operator would."""

    def __init__(self, workdir: Path, profiles: tuple[str, ...] = ("client",),
                 settings: dict[str, str] | None = None) -> None:
        self.profiles = profiles
        self.dir = workdir / "stack"
        self.dir.mkdir()
        for name in CONTEXT:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, self.dir / name, ignore=shutil.ignore_patterns(
                    "__pycache__", "*.egg-info"))
            else:
                shutil.copy2(source, self.dir / name)
        self.project = "mdbtest" + secrets.token_hex(4)
        self.https_port, self.api_port = free_port(), free_port()
        self.http_port = free_port()
        octet = random.randrange(100, 250)
        self.db_password = "p@ss:/w#rd?" + secrets.token_hex(8)
        values = {
            "COMPOSE_PROJECT_NAME": self.project,
            "MINIDROPBOX_CLUSTER_SECRET": secrets.token_hex(32),
            "MINIDROPBOX_JWT_SECRET": secrets.token_hex(32),
            "POSTGRES_PASSWORD": self.db_password,
            "HTTPS_PORT": str(self.https_port),
            "HTTP_PORT": str(self.http_port),
            "API_PORT": str(self.api_port),
            "EDGE_SUBNET": f"172.16.{octet}.0/24",
            "EDGE_RANGE": f"172.16.{octet}.128/25",
            "PROXY_ADDRESS": f"172.16.{octet}.2",
            **(settings or {}),
        }
        lines = []
        for line in (ROOT / ".env.example").read_text().splitlines():
            key = line.split("=", 1)[0]
            lines.append(f"{key}={values.pop(key)}" if key in values else line)
        assert not values, f".env.example lacks {sorted(values)}"
        (self.dir / ".env").write_text("\n".join(lines) + "\n")
        self.base = f"https://localhost:{self.https_port}"
        self.timings: dict[str, float] = {}
        self.tls: ssl.SSLContext | None = None

    def compose(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 900) -> subprocess.CompletedProcess[str]:
        # docker-compose 1.x gives up on a Docker API call after 60 s: too short on a loaded
        # 2-core machine while images build or many containers start.
        env = {**os.environ, "COMPOSE_HTTP_TIMEOUT": "600"}
        profiles = [arg for name in self.profiles for arg in ("--profile", name)]
        result = subprocess.run([*compose_command(), *profiles, *args],
                                cwd=self.dir, input=input, capture_output=True, text=True,
                                timeout=timeout, env=env)
        if check and result.returncode != 0:
            raise AssertionError(f"compose {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result

    def container(self, service: str) -> str:
        found = self.compose("ps", "-q", service).stdout.split()
        assert len(found) == 1, f"{service}: {found}"
        return found[0]

    def inspect(self, service: str, template: str) -> str:
        return subprocess.run(["docker", "inspect", "-f", template, self.container(service)],
                              capture_output=True, text=True, check=True).stdout.strip()

    def health(self, service: str) -> str:
        return self.inspect(service, "{{.State.Status}}/"
                            "{{if .State.Health}}{{.State.Health.Status}}{{end}}")

    def wait_healthy(self, services: list[str], timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = {s: self.health(s) for s in services}
            if all(state == "running/healthy" for state in states.values()):
                return
            time.sleep(1)
        logs = self.compose("logs", "--tail", "30", check=False).stdout
        raise AssertionError(f"not healthy after {timeout} s: {states}\n{logs[-6000:]}")

    def up(self, services: list[str] = SERVICES) -> None:
        self.compose("up", "-d")
        self.wait_healthy(services)
        assert self.health("backup").startswith("running/"), self.health("backup")

    def client(self, timeout: float = 120) -> httpx.Client:
        """HTTPS to the proxy, verifying its self-signed certificate (made on first start)."""
        if self.tls is None:
            pem = self.compose("exec", "-T", "proxy", "cat", "/tls/cert.pem").stdout
            self.tls = ssl.create_default_context(cadata=pem)
        return httpx.Client(base_url=self.base, verify=self.tls, timeout=timeout)

    def cli(self, *args: str) -> str:
        """``minidropbox ARGS`` in a fresh ``client`` container (its config volume persists)."""
        return self.compose("run", "--rm", "-T", "client", *args).stdout

    def timed(self, name: str, started: float) -> None:
        self.timings[name] = round(time.monotonic() - started, 1)


def login(client: httpx.Client, username: str = "alice") -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def put(client: httpx.Client, auth: dict[str, str], path: str, data: bytes) -> None:
    r = client.put("/api/v1/files/content", params={"path": path}, headers=auth, content=data)
    assert r.status_code in (200, 201), r.text


def get(client: httpx.Client, auth: dict[str, str], path: str) -> bytes:
    r = client.get("/api/v1/files/content", params={"path": path}, headers=auth)
    assert r.status_code == 200, r.text
    return r.content


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("containers"))
    try:
        started = time.monotonic()
        stack.compose("build", timeout=1800)
        stack.timed("build (images cached where unchanged)", started)
        started = time.monotonic()
        stack.up()
        stack.timed("up until every health check passed", started)
        yield stack
    finally:
        started = time.monotonic()
        stack.compose("down", "-v", "--remove-orphans", check=False)
        stack.timed("down -v", started)
        print("\ncontainer stack timings (s):", json.dumps(stack.timings))


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    rng = random.Random(19)
    return {"/big.bin": rng.randbytes(3 * MiB + 17), "/notes.txt": b"hello from compose\n"}


def test_every_service_is_healthy(stack: Stack) -> None:
    for service in SERVICES:
        assert stack.health(service) == "running/healthy", service
    # Volumes belong to the image's fixed user and group, whatever the base image's ids.
    for service in ("api", "storage-1", "backup"):
        owner = stack.compose("exec", "-T", service, "stat", "-c", "%u:%g", "/data").stdout
        assert owner.strip() == "10001:10001", service
    # The password with @:/#? reached PostgreSQL intact: the API is ready on it.
    with stack.client() as client:
        ready = client.get("/readyz").json()
    assert ready == {"status": "ready", "database": True, "nodes_up": 3, "nodes_needed": 2}


def _image(name: str, template: str) -> Any:
    out = subprocess.run(["docker", "image", "inspect", "-f", template, name],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out) if template.startswith("{{json") else out.strip()


def test_images_sit_on_the_recorded_base_images(stack: Stack) -> None:
    """Built FROM the base images deploy/base-images.sh pinned (README, "Deploy")."""
    lock = Path(os.environ.get("BASE_IMAGES_LOCK") or Path(
        os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
        / "minidropbox" / "base-images.lock")
    recorded = {line.split()[0]: line.split()[1] for line in lock.read_text().splitlines()}
    for built, base in (("minidropbox:latest", "python:3.11-slim-bookworm"),
                        ("minidropbox-proxy:latest", "debian:bookworm-slim"),
                        ("postgres:15", "postgres:15")):
        assert _image(base, "{{.Id}}") == recorded[base], base
        base_layers = _image(base, "{{json .RootFS.Layers}}")
        assert _image(built, "{{json .RootFS.Layers}}")[:len(base_layers)] == base_layers, built
    assert stack.inspect("postgres", "{{.Image}}") == recorded["postgres:15"]


def test_signup_upload_download_over_https(stack: Stack, files: dict[str, bytes]) -> None:
    started = time.monotonic()
    with stack.client() as client:
        r = client.post("/api/v1/auth/signup", json={"username": "alice", "password": PASSWORD})
        assert r.status_code == 201, r.text
        auth = login(client)
        for path, data in files.items():
            put(client, auth, path, data)
        for path, data in files.items():
            assert get(client, auth, path) == data
        # The API believes the proxy's X-Forwarded-Proto: its redirects name https...
        r = client.get("/docs/", follow_redirects=False)
        assert r.status_code == 307 and r.headers["location"].startswith(f"{stack.base}/")
    # ...and nobody else's: the same header sent straight to the API's port is ignored.
    direct = httpx.get(f"http://127.0.0.1:{stack.api_port}/docs/", timeout=30,
                       headers={"X-Forwarded-Proto": "https"}, follow_redirects=False)
    assert direct.status_code == 307 and direct.headers["location"].startswith("http://")
    stack.timed("sign-up, upload, download", started)


def test_plain_http_is_redirected_to_https(stack: Stack) -> None:
    plain = f"http://localhost:{stack.http_port}"
    for method in ("GET", "PUT"):
        r = httpx.request(method, f"{plain}/api/v1/files/content?path=/a%20b.txt", timeout=30,
                          follow_redirects=False)
        assert r.status_code == 308, (method, r.status_code, r.text[:200])
        assert r.headers["location"] == f"{stack.base}/api/v1/files/content?path=/a%20b.txt"
    # Followed, it lands on the API over HTTPS (the certificate checked).
    with stack.client() as client:
        r = client.get(f"{plain}/api/v1/server", follow_redirects=True)
    assert r.status_code == 200 and str(r.url).startswith(stack.base), r.url


def test_cli_in_the_client_container(stack: Stack, tmp_path: Path) -> None:
    started = time.monotonic()
    tmp_path.chmod(0o777)  # the container's user (10001) writes the download here
    (tmp_path / "report.bin").write_bytes(os.urandom(MiB + 3))
    # One container for the session (each `run` costs a container start): the CLI as a user
    # types it, the password on stdin.
    script = """set -e
printf '%s\\n' "$PW" | minidropbox signup bob --password-stdin
printf '%s\\n' "$PW" | minidropbox login bob --password-stdin
minidropbox whoami
minidropbox put /files/report.bin /
minidropbox ls /
minidropbox get /report.bin /files/back.bin
"""
    out = stack.compose("run", "--rm", "-T", "-e", f"PW={PASSWORD}", "-v", f"{tmp_path}:/files",
                        "--entrypoint", "sh", "client", "-c", script).stdout
    assert "bob" in out and "report.bin" in out, out
    assert (tmp_path / "back.bin").read_bytes() == (tmp_path / "report.bin").read_bytes()
    # The session lives in the client-config volume: the next container is still logged in.
    assert "bob" in stack.cli("whoami")
    stack.timed("CLI in the client container", started)


def test_the_client_container_verifies_the_proxy_certificate(stack: Stack) -> None:
    # The client container's server is the proxy over HTTPS, checked against the proxy's
    # self-signed certificate (bob logged in there by the test before)...
    assert "bob on https://proxy" in stack.cli("whoami")
    # ...and with only the public CAs to trust, the same command is refused.
    refused = stack.compose("run", "--rm", "-T", "-e",
                            "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "client",
                            "whoami", check=False)
    assert refused.returncode != 0, refused.stdout
    assert "certificate" in (refused.stdout + refused.stderr).lower(), refused.stderr[-500:]


def test_the_cli_over_https_with_the_proxy_certificate(stack: Stack, tmp_path: Path,
                                                       files: dict[str, bytes]) -> None:
    """The README's way to trust the self-signed certificate, from this host."""
    pem = tmp_path / "mdb.pem"
    pem.write_text(stack.compose("exec", "-T", "proxy", "cat", "/tls/cert.pem").stdout)
    env = {**os.environ, "SSL_CERT_FILE": str(pem), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    env.pop("MINIDROPBOX_SERVER", None)

    def cli(*args: str, input: str | None = None) -> str:
        result = subprocess.run([str(BIN), "--server", stack.base, *args], env=env, input=input,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    cli("login", "alice", "--password-stdin", input=PASSWORD + "\n")
    listing = cli("ls", "/")
    assert all(path.lstrip("/") in listing for path in files), listing
    cli("get", "/notes.txt", str(tmp_path / "notes.txt"))
    assert (tmp_path / "notes.txt").read_bytes() == files["/notes.txt"]


def test_backup_container_snapshots_and_verifies(stack: Stack, files: dict[str, bytes]) -> None:
    started = time.monotonic()
    snapshot: dict[str, Any] = {}
    for _ in range(30):  # the service's own run may hold the repository lock for a moment
        result = stack.compose("exec", "-T", "backup", "minidropbox", "--json", "backup",
                               "now", "--repo", "/backup", check=False)
        if result.returncode == 0:
            snapshot = json.loads(result.stdout)
            break
        assert result.returncode == 5, result.stdout + result.stderr  # 5: locked, retry
        time.sleep(2)
    assert snapshot, "backup now never got the repository"
    assert snapshot["chunks"]["missing_count"] == 0
    assert snapshot["chunks"]["copied"] + snapshot["chunks"]["skipped"] >= len(files)
    verify = stack.compose("exec", "-T", "backup", "minidropbox", "--json", "backup", "verify",
                           "--repo", "/backup", "--read-data")
    assert json.loads(verify.stdout)["ok"], verify.stdout
    listed = json.loads(stack.compose("exec", "-T", "backup", "minidropbox", "--json",
                                      "backup", "list", "--repo", "/backup").stdout)
    assert len(listed["snapshots"]) >= 2  # the service's own at start, and this one
    log = stack.compose("logs", "backup").stdout
    assert "backup failed" not in log, log[-3000:]
    stack.timed("backup now + verify --read-data", started)


def test_a_killed_storage_node_is_restarted_while_the_api_serves(
        stack: Stack, files: dict[str, bytes]) -> None:
    started = time.monotonic()
    before = int(stack.inspect("storage-2", "{{.RestartCount}}"))
    # SIGKILL from outside, as the OOM killer would: Docker's restart policy applies (after
    # `docker kill` or `docker stop` it would not, by design).
    os.kill(int(stack.inspect("storage-2", "{{.State.Pid}}")), signal.SIGKILL)
    with stack.client() as client:
        auth = login(client)
        for path, data in files.items():
            assert get(client, auth, path) == data
        fresh = os.urandom(2 * MiB)
        put(client, auth, "/while-a-node-was-down.bin", fresh)
        assert get(client, auth, "/while-a-node-was-down.bin") == fresh
        files["/while-a-node-was-down.bin"] = fresh
        stack.wait_healthy(["storage-2"], timeout=120)
        assert int(stack.inspect("storage-2", "{{.RestartCount}}")) > before
        deadline = time.monotonic() + 60
        while client.get("/readyz").json().get("nodes_up") != 3:
            assert time.monotonic() < deadline, "the API never saw the node back"
            time.sleep(1)
    stack.timed("kill -9 storage-2 until back and seen", started)


def test_the_stack_comes_back_with_its_data(stack: Stack, files: dict[str, bytes]) -> None:
    started = time.monotonic()
    stack.compose("down")  # containers and network go, volumes stay
    stack.up()
    with stack.client() as client:
        auth = login(client)
        for path, data in files.items():
            assert get(client, auth, path) == data
    assert "report.bin" in stack.cli("ls", "/")  # the CLI's session survived in its volume
    stack.timed("down, up, everything still there", started)


def test_the_s3_profile_keeps_the_chunks_in_seaweedfs(
        stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> None:
    """README, "Scaling out": the same compose file with the `s3` profile and CHUNK_STORES
    runs the stack on SeaweedFS (after the first stack is down: one at a time)."""
    stack.compose("down", "-v", "--remove-orphans", check=False)
    started = time.monotonic()
    s3 = Stack(tmp_path_factory.mktemp("containers-s3"), profiles=("s3", "client"), settings={
        "CHUNK_STORES": "s3=s3://minidropbox/chunks?endpoint=http://seaweedfs:8333",
        "MINIDROPBOX_REPLICAS": "1", "S3_ACCESS_KEY": "mdb-" + secrets.token_hex(4),
        "S3_SECRET_KEY": secrets.token_hex(20)})
    try:
        s3.compose("build", timeout=1800)
        s3.up([*SERVICES, "seaweedfs"])
        data = random.Random(23).randbytes(2 * MiB + 5)
        with s3.client() as client:
            assert client.get("/readyz").json()["nodes_needed"] == 1
            r = client.post("/api/v1/auth/signup", json={"username": "alice",
                                                         "password": PASSWORD})
            assert r.status_code == 201, r.text
            auth = login(client)
            put(client, auth, "/in-the-bucket.bin", data)
            assert get(client, auth, "/in-the-bucket.bin") == data
        count = s3.compose("exec", "-T", "api", "python", "-c", (
            "import os, obstore\n"
            "from minidropbox.storage.s3 import location_from\n"
            "loc = location_from(os.environ['MINIDROPBOX_NODES'].split('=', 1)[1], None)\n"
            "print(sum(len(b) for b in obstore.list(loc.open(30), loc.chunks_prefix)))")).stdout
        assert int(count) >= 1, count
    finally:
        s3.compose("down", "-v", "--remove-orphans", check=False)
        s3.timed("s3 profile: build, up, upload, download, down", started)
        print("\ns3 profile timings (s):", json.dumps(s3.timings))
