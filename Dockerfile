# One image for every Mini-Dropbox process: the API, the storage nodes, the backup service and
# the CLI. compose.yaml picks the process with the command (`server api`, `server storage`...).
#
#   docker build -t minidropbox .
#   docker run --rm minidropbox --help
#
# bookworm, not the newest Debian: its postgresql-client (pg_dump 15, for metadata backups)
# must be at least as new as the PostgreSQL server in compose.yaml (postgres:15).
# Reproducible from requirements.lock: every Python package at its locked version, checked
# against its locked hashes (README, "Dependencies", says how to update the lock).

FROM python:3.11-slim-bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*

# A fixed, unprivileged uid and gid so volume ownership is predictable across rebuilds. /data,
# /backup and the CLI's config folder exist in the image, owned by that user, so an empty
# named volume mounted there starts with the same owner (else it would be root's).
RUN groupadd --system --gid 10001 minidropbox \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/minidropbox \
        minidropbox \
    && mkdir -p /data /backup /home/minidropbox/.config \
    && chown minidropbox:minidropbox /data /backup /home/minidropbox/.config

# The dependencies first, in their own layer: a change to the code alone rebuilds from the
# COPY of src below, in seconds.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-cache-dir --require-hashes -r /tmp/requirements.lock \
    && rm /tmp/requirements.lock
COPY pyproject.toml README.md /tmp/minidropbox/
COPY src /tmp/minidropbox/src
# --no-deps: everything it needs is installed above; pip check fails the build if the lock
# no longer satisfies pyproject.toml (run `make lock`).
RUN pip install --no-cache-dir --no-deps --no-build-isolation /tmp/minidropbox \
    && rm -rf /tmp/minidropbox \
    && pip check

USER minidropbox
WORKDIR /home/minidropbox

ENV PYTHONUNBUFFERED=1 \
    MINIDROPBOX_DATA_DIR=/data
EXPOSE 8000 9000
ENTRYPOINT ["minidropbox"]
CMD ["--help"]
