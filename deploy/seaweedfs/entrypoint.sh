#!/bin/sh
# One `weed server` (master, volume, filer and the S3 gateway) keeping its data in /data.
# Only the S3 port (8333) is meant for others, and only inside the compose network: nothing
# publishes it. Telemetry is off, the extra listeners it opens by default are closed, and
# S3 requests must be signed with S3_ACCESS_KEY / S3_SECRET_KEY (without an identity
# SeaweedFS would accept anonymous writes).
set -eu
if [ -z "${S3_ACCESS_KEY:-}" ] || [ -z "${S3_SECRET_KEY:-}" ]; then
    echo "seaweedfs: set S3_ACCESS_KEY and S3_SECRET_KEY in .env" >&2
    exit 1
fi
umask 077
python - <<'PY'
import json, os
identity = {"name": "minidropbox",
            "credentials": [{"accessKey": os.environ["S3_ACCESS_KEY"],
                             "secretKey": os.environ["S3_SECRET_KEY"]}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}
with open("/etc/seaweedfs/s3.json", "w") as out:
    json.dump({"identities": [identity]}, out)
PY
exec weed server -dir=/data -ip="${SEAWEEDFS_HOST:-seaweedfs}" -ip.bind=0.0.0.0 \
    -master.telemetry=false -master.volumeSizeLimitMB="${SEAWEEDFS_VOLUME_MB:-1024}" \
    -volume.max=0 -filer -s3 -s3.port=8333 -s3.config=/etc/seaweedfs/s3.json \
    -s3.port.iceberg=0 -s3.port.lance=0 -metricsPort=0 "$@"
