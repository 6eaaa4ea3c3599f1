"""The S3 backend: a second cluster whose chunks live in a SeaweedFS bucket, its CLI upload and
download of the big file, against ``rclone copy`` straight into (and out of) the same bucket."""

from __future__ import annotations

import os
import subprocess

import httpx
from tests.seaweedfs import ACCESS_KEY, seaweedfs

from bench.peers import free_port
from bench.scenarios import Context, Row, random_file
from bench.system import PASSWORD, User, timed
from minidropbox.launcher import Cluster

MiB = 1024 * 1024


def s3_rows(ctx: Context) -> list[Row]:
    size = ctx.big_mib * MiB
    size_mb = size / 1e6
    up, down, api_down, rc_up, rc_down = [], [], [], [], []
    with seaweedfs(ctx.workdir / "seaweedfs") as weed:
        weed.create_bucket("bench")
        url = weed.url("bench", "cluster")
        env = {"MINIDROPBOX_S3_CREDENTIALS_FILE": str(weed.credentials_file())}
        os.environ.update(env)  # the cluster's children inherit it
        cluster = Cluster(ctx.workdir / "s3-cluster", nodes=0, replicas=1, port=free_port(),
                          backup=False, s3_url=url)
        cluster.start()
        remote = ":s3:bench/rclone"
        # rclone 1.60 cannot use AWS_CA_BUNDLE with its own transport (and needs none here).
        rclone_env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        rclone_env.update(RCLONE_S3_PROVIDER="SeaweedFS", RCLONE_S3_ENDPOINT=weed.endpoint,
                          RCLONE_S3_ACCESS_KEY_ID=ACCESS_KEY,
                          RCLONE_S3_SECRET_ACCESS_KEY=weed.secret_key)

        def rclone(*args: str) -> None:
            subprocess.run(["rclone", "--config", "/dev/null", *args], check=True,
                           env=rclone_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        try:
            for run in range(ctx.runs):
                big = random_file(ctx.workdir / "s3-big.bin", size, seed=500 + run)
                user = User(ctx.workdir, f"s3u{run}", cluster.url)
                dest = ctx.workdir / "s3-down.bin"
                up.append(size_mb / timed(user.run, "put", str(big), "/big.bin"))
                down.append(size_mb / timed(user.run, "get", "/big.bin", str(dest)))
                dest.unlink(missing_ok=True)
                # The API's part alone: the same download by curl, which neither cuts nor
                # hashes what it receives (the CLI verifies every chunk as it arrives).
                api_down.append(size_mb / timed(_curl_get, cluster.url, user.name, "/big.bin"))
                if ctx.rclone:  # rclone is on this machine
                    rc_up.append(size_mb / timed(rclone, "copyto", str(big),
                                                 f"{remote}/big-{run}.bin"))
                    rc_down.append(size_mb / timed(rclone, "copyto", f"{remote}/big-{run}.bin",
                                                   str(dest)))
                    dest.unlink(missing_ok=True)
                big.unlink()
        finally:
            cluster.stop()
            for key in env:
                os.environ.pop(key, None)
    label = f"{ctx.big_mib} MiB"
    return [
        Row(f"S3 backend: upload {label} (CLI, one copy in SeaweedFS)", "MB/s", up,
            "rclone copyto → the same bucket", rc_up, "≥ 0.8 × rclone"),
        Row(f"S3 backend: download {label} (CLI)", "MB/s", down,
            "rclone copyto ← the same bucket", rc_down, "≥ 0.8 × rclone"),
        Row(f"S3 backend: download {label} through the API alone (curl)", "MB/s", api_down,
            "rclone copyto ← the same bucket", rc_down, "shown"),
    ]


def _curl_get(server: str, username: str, path: str) -> None:
    token = httpx.post(f"{server}/api/v1/auth/login", timeout=60,
                       json={"username": username, "password": PASSWORD}).json()["access_token"]
    subprocess.run(["curl", "-sSf", "-o", "/dev/null", "-H", f"Authorization: Bearer {token}",
                    f"{server}/api/v1/files/content?path={path}"], check=True)


S3_SCENARIOS = {"s3": s3_rows}
