#!/usr/bin/env bash
# The base images the Dockerfiles start FROM: pulled when a registry answers, else built here
# from Debian's packages and tagged with the same names, so nothing else changes:
#   debian:bookworm-slim        mmdebstrap (minbase + CA certificates)
#   python:3.11-slim-bookworm   mmdebstrap (Debian's python3 3.11 + pip)
#   postgres:15                 deploy/postgres (Debian's postgresql-15, the official image's
#                               POSTGRES_* contract)
# An image already present is kept: delete it (docker rmi NAME) to make it again.
# The host's extra CA certificates (/usr/local/share/ca-certificates) go into the stand-ins:
# HTTPS from some networks passes a TLS-intercepting proxy, and pip/apt inside a build must
# trust it as the host does.
set -euo pipefail
cd "$(dirname "$0")"
DOCKER=${DOCKER:-docker}
SUITE=bookworm

has_image() { [ -n "$($DOCKER images -q "$1")" ]; }
say() { echo "base-images: $*"; }

# A stand-in made with mmdebstrap from this machine's apt sources (Debian's mirror).
debootstrap_image() {
    local name=$1 include=$2 cmd=$3
    command -v mmdebstrap >/dev/null || { say "mmdebstrap is missing (apt-get install mmdebstrap)"; exit 2; }
    say "$name: not pullable here, building a stand-in with mmdebstrap ($include)"
    mmdebstrap --quiet --variant=minbase --include="$include" \
        --aptopt='Acquire::Check-Valid-Until "false"' \
        --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED' \
        --customize-hook='for f in /usr/local/share/ca-certificates/*.crt; do if [ -e "$f" ]; then cp "$f" "$1/usr/local/share/ca-certificates/"; fi; done; chroot "$1" update-ca-certificates >/dev/null' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
        "$SUITE" - |
        $DOCKER import --change 'ENV LANG=C.UTF-8' --change "CMD [\"$cmd\"]" - "$name" >/dev/null
}

ensure() {
    local name=$1
    if has_image "$name"; then say "$name: present"; return 0; fi
    if timeout 120 $DOCKER pull -q "$name" >/dev/null 2>&1; then say "$name: pulled"; return 0; fi
    case $name in
        debian:bookworm-slim)
            debootstrap_image "$name" ca-certificates,netbase bash ;;
        python:3.11-slim-bookworm)
            debootstrap_image "$name" ca-certificates,netbase,python3,python3-pip,python3-venv,python-is-python3 python3 ;;
        postgres:15)
            ensure debian:bookworm-slim
            say "$name: not pullable here, building the stand-in in deploy/postgres"
            $DOCKER build -q -t "$name" postgres >/dev/null ;;
        *) say "no stand-in for $name"; exit 2 ;;
    esac
    say "$name: built"
}

for image in "${@:-debian:bookworm-slim python:3.11-slim-bookworm postgres:15}"; do
    for one in $image; do ensure "$one"; done
done
