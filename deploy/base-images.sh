#!/usr/bin/env bash
# The base images the Dockerfiles start FROM: pulled when a registry answers, else built here
# from Debian's packages and tagged with the same names, so nothing else changes:
#   debian:bookworm-slim        mmdebstrap (minbase + CA certificates)
#   python:3.11-slim-bookworm   mmdebstrap (Debian's python3 3.11 + pip)
#   postgres:15                 deploy/postgres (Debian's postgresql-15, the official image's
#                               POSTGRES_* contract)
# An image already present is kept: delete it (docker rmi NAME) to make it again.
#
# Pinned by content hash: the first time each base image is made or pulled on this host, its
# image ID (sha256 of its configuration, which names the digest of every layer) and, when it
# came from a registry, its repository digest are recorded in $BASE_IMAGES_LOCK; every later
# run checks the images against that record and stops if one changed (re-tagged, rebuilt,
# pulled anew), and a recorded repository digest is what gets pulled again. A stand-in made
# here has no registry digest (it was never pushed), and making it again gives a new ID
# (docker import stamps the time), so its record is per host, not in the repository:
#   deploy/base-images.sh --forget NAME   accepts a deliberately remade or updated image
#   deploy/base-images.sh --show          prints the record
# `make test-containers` also checks that each built image sits on the recorded layers.
# The host's extra CA certificates (/usr/local/share/ca-certificates) go into the stand-ins:
# HTTPS from some networks passes a TLS-intercepting proxy, and pip/apt inside a build must
# trust it as the host does.
set -euo pipefail
cd "$(dirname "$0")"
DOCKER=${DOCKER:-docker}
SUITE=bookworm

BASE_IMAGES_LOCK=${BASE_IMAGES_LOCK:-${XDG_STATE_HOME:-$HOME/.local/state}/minidropbox/base-images.lock}

has_image() { [ -n "$($DOCKER images -q "$1")" ]; }
say() { echo "base-images: $*"; }

# The record: one line per image, "NAME IMAGE_ID REPO_DIGEST|local".
recorded() { [ -f "$BASE_IMAGES_LOCK" ] && awk -v n="$1" '$1 == n {print $'"$2"'}' "$BASE_IMAGES_LOCK" || true; }

forget() {
    [ -f "$BASE_IMAGES_LOCK" ] || return 0
    awk -v n="$1" '$1 != n' "$BASE_IMAGES_LOCK" > "$BASE_IMAGES_LOCK.tmp"
    mv "$BASE_IMAGES_LOCK.tmp" "$BASE_IMAGES_LOCK"
    say "$1: forgotten; the next run records what it finds"
}

# Record an image seen for the first time, else check it is still the recorded one.
pin() {
    local name=$1 id digest want
    id=$($DOCKER image inspect -f '{{.Id}}' "$name")
    digest=$($DOCKER image inspect -f '{{range .RepoDigests}}{{.}} {{end}}' "$name" | awk '{print $1}')
    want=$(recorded "$name" 2)
    if [ -z "$want" ]; then
        mkdir -p "$(dirname "$BASE_IMAGES_LOCK")"
        echo "$name $id ${digest:-local}" >> "$BASE_IMAGES_LOCK"
        say "$name: recorded $id${digest:+ ($digest)} in $BASE_IMAGES_LOCK"
    elif [ "$want" != "$id" ]; then
        say "$name is $id, but $want was recorded in $BASE_IMAGES_LOCK:"
        say "it was rebuilt, re-tagged or pulled anew since. If you meant that, run"
        say "  deploy/base-images.sh --forget $name"
        exit 3
    else
        say "$name: $id, as recorded"
    fi
}

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
    local name=$1 pinned
    if has_image "$name"; then say "$name: present"; pin "$name"; return 0; fi
    # A registry image recorded by its digest comes back as exactly that content.
    pinned=$(recorded "$name" 3)
    if [ -n "$pinned" ] && [ "$pinned" != local ] &&
            timeout 120 $DOCKER pull -q "$pinned" >/dev/null 2>&1; then
        $DOCKER tag "$pinned" "$name"
        say "$name: pulled $pinned"; pin "$name"; return 0
    fi
    if timeout 120 $DOCKER pull -q "$name" >/dev/null 2>&1; then
        say "$name: pulled"; pin "$name"; return 0
    fi
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
    pin "$name"
}

case ${1:-} in
    --forget) shift; for name in "$@"; do forget "$name"; done; exit 0 ;;
    --show) cat "$BASE_IMAGES_LOCK" 2>/dev/null || say "nothing recorded yet"; exit 0 ;;
esac
for image in "${@:-debian:bookworm-slim python:3.11-slim-bookworm postgres:15}"; do
    for one in $image; do ensure "$one"; done
done
