#!/usr/bin/env bash
# Run a command with a Docker engine: `deploy/with-docker.sh CMD [ARGS...]` (as root).
#  1. Debian's docker.io, docker-compose and mmdebstrap are installed when missing.
#  2. dockerd is started by hand when none answers (machines without systemd), and stopped
#     again at the end; an engine that was already running is used and left running.
#  3. The base images the Dockerfiles start FROM are pulled, or made here (base-images.sh).
# When Docker cannot be had (no root, no apt, a daemon that will not start) it says why and
# exits 77, or 0 with MINIDROPBOX_CONTAINERS_OPTIONAL=1 (CI on machines without Docker).
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=$(mktemp -d /tmp/minidropbox-docker.XXXXXX)
STARTED=

unavailable() {
    echo "with-docker: Docker cannot be started on this machine: $*" >&2
    echo "with-docker: the container tests did NOT run." >&2
    [ "${MINIDROPBOX_CONTAINERS_OPTIONAL:-}" = 1 ] && exit 0
    exit 77
}

stop_started_engine() {
    if [ -n "$STARTED" ] && [ -s "$STATE/dockerd.pid" ]; then
        local pid
        pid=$(cat "$STATE/dockerd.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        echo "with-docker: stopped the dockerd it started (pid $pid)"
    fi
    rm -rf "$STATE"
}
trap stop_started_engine EXIT

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || unavailable "${missing[*]} missing, and installing needs root"
    command -v apt-get >/dev/null || unavailable "${missing[*]} missing, and no apt-get"
    echo "with-docker: installing ${missing[*]} (apt-get)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null; } ||
        unavailable "apt-get install ${missing[*]} failed"
fi

if ! docker info >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || unavailable "no Docker engine answers, and starting one needs root"
    echo "with-docker: starting dockerd (log: $STATE/dockerd.log)"
    setsid dockerd --pidfile "$STATE/dockerd.pid" >"$STATE/dockerd.log" 2>&1 </dev/null &
    STARTED=1
    for _ in $(seq 90); do docker info >/dev/null 2>&1 && break; sleep 1; done
    if ! docker info >/dev/null 2>&1; then
        tail -5 "$STATE/dockerd.log" >&2 || true
        unavailable "dockerd did not answer within 90 s"
    fi
fi

deploy/base-images.sh
"$@"
