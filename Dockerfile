# One image for every Mini-Dropbox process: the API, the storage nodes, the backup service and
# the CLI. compose.yaml picks the process with the command (`server api`, `server storage`...).
#
#   docker build -t minidropbox .
#   docker run --rm minidropbox --help
#
# bookworm, not the newest Debian: its postgresql-client (pg_dump 15, for metadata backups)
# must be at least as new as the PostgreSQL server in compose.yaml (postgres:15).

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels

# A fixed, unprivileged uid so volume ownership is predictable across rebuilds. /data,
# /backup and the CLI's config folder exist in the image, owned by that user, so an empty
# named volume mounted there starts with the same owner (else it would be root's).
RUN useradd --system --uid 10001 --create-home --home-dir /home/minidropbox minidropbox \
    && mkdir -p /data /backup /home/minidropbox/.config \
    && chown minidropbox:minidropbox /data /backup /home/minidropbox/.config
USER minidropbox
WORKDIR /home/minidropbox

ENV PYTHONUNBUFFERED=1 \
    MINIDROPBOX_DATA_DIR=/data
EXPOSE 8000 9000
ENTRYPOINT ["minidropbox"]
CMD ["--help"]
