"""Operator commands: ``minidropbox server ...`` starts the server processes."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

import click

from minidropbox.core.errors import NotFound
from minidropbox.logs import configure_logging
from minidropbox.settings import Settings


def load_settings(**overrides: Any) -> Settings:
    """Settings from env/TOML, with the command-line flags that were given on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def resolve_data_dir(path: Path) -> Path:
    """``--data`` means one thing everywhere: the folder given to ``server cluster --data``,
    whose API keeps its metadata in ``api/``. A folder holding ``metadata.db`` itself (an API
    started on its own with ``server api --data``) is taken as it is."""
    if (path / "metadata.db").exists():
        return path
    if (path / "api").is_dir():
        return path / "api"
    return path


def installation_settings(data_dir: Path | None) -> Settings:
    """Settings for an operator command on an installation that must already exist: the
    data folder is resolved as ``resolve_data_dir`` does, and a SQLite database that is not
    there is an error — such a command never creates an empty one."""
    base = data_dir if data_dir is not None else load_settings().data_dir
    settings = load_settings(data_dir=resolve_data_dir(base))
    on_sqlite = settings.effective_database_url.startswith("sqlite")  # not a URL or its parts
    if on_sqlite and not (settings.data_dir / "metadata.db").exists():
        raise NotFound(f"No Mini-Dropbox metadata in {base}: expected {base}/api/metadata.db "
                       "(the folder given to `server cluster --data`) or "
                       f"{base}/metadata.db; set --data or MINIDROPBOX_DATA_DIR.")
    return settings


def listen_and_tell(host: str, port: int, port_file: Path) -> socket.socket:
    """Listen on ``host:port`` in this process and write the port actually bound to
    ``port_file`` (written whole, then renamed into place). With ``--port 0`` the system
    picks a free port: whoever started the server reads it there, and no other process can
    take the port between its choice and its use."""
    from minidropbox.api.workers import listening_socket

    sock = listening_socket(host, port)
    tmp = port_file.with_name(port_file.name + ".tmp")
    tmp.write_text(f"{sock.getsockname()[1]}\n")
    tmp.replace(port_file)
    return sock


PORT_FILE_HELP = ("Write the port listened on to this file once listening (with --port 0 the "
                  "system picks a free one).")


# Server processes create their files 0600 and folders 0700 whatever the shell's umask: the
# metadata DB holds password and session hashes, chunks and backups hold users' files.
SERVER_UMASK = 0o077


@click.group()
def server() -> None:
    """Run the server processes (API, storage node, backup, the whole cluster)."""
    os.umask(SERVER_UMASK)


@server.command("cluster")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=Path("./data"),
              show_default=True, help="Everything lives under this directory.")
@click.option("--nodes", type=click.IntRange(1, 32), default=3, show_default=True)
@click.option("--replicas", type=click.IntRange(1, 8), default=2, show_default=True)
@click.option("--port", type=int, default=8000, show_default=True,
              help="API port; nodes take the next ports.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--no-backup", is_flag=True, help="Do not run the backup service.")
@click.option("--backup-every", default=None, help="Backup interval, e.g. 1h or 30m.")
@click.option("--storage", type=click.Choice(["nodes", "s3"]), default="nodes",
              show_default=True, envvar="MINIDROPBOX_STORAGE",
              help="Built-in storage nodes, or an S3-compatible bucket (--s3-url).")
@click.option("--s3-url", default=None, envvar="MINIDROPBOX_S3_URL",
              metavar="s3://BUCKET/PREFIX?endpoint=URL",
              help="The bucket for --storage s3; credentials from AWS_ACCESS_KEY_ID and "
                   "AWS_SECRET_ACCESS_KEY or MINIDROPBOX_S3_CREDENTIALS_FILE.")
def cluster_command(data_dir: Path, nodes: int, replicas: int, port: int, host: str,
                    no_backup: bool, backup_every: str | None, storage: str,
                    s3_url: str | None) -> None:
    """Run the whole system locally: storage nodes, API and backup service.

    Every process is supervised: one that exits is restarted with a backoff (a crash loop is
    left stopped). Ctrl-C or SIGTERM stops them all."""
    from minidropbox.launcher import Cluster

    if storage == "s3":
        if not s3_url:
            raise click.BadParameter("--storage s3 needs --s3-url s3://BUCKET/PREFIX?endpoint=URL",
                                     param_hint="--s3-url")
        from minidropbox.storage.s3 import S3ChunkStore, location_from
        settings = load_settings()
        # A wrong URL, endpoint, credentials or a missing bucket fail here, in one line.
        S3ChunkStore(location_from(s3_url, settings.s3_credentials_file), 10.0).check_bucket()
    elif replicas > nodes:
        raise click.BadParameter(f"cannot keep {replicas} replicas on {nodes} nodes",
                                 param_hint="--replicas")
    cluster = Cluster(data_dir, nodes, replicas, port, host, backup=not no_backup,
                      backup_every=backup_every, s3_url=s3_url if storage == "s3" else None)
    cluster.check_ports()  # before any banner: a taken port is one clear line
    configure_logging(load_settings().json_logs)  # the supervisor's restarts, on stderr
    where = (f"the bucket {s3_url.split('?')[0]}" if storage == "s3" and s3_url
             else f"{nodes} storage nodes")
    click.echo(f"Starting {where} and the API under {cluster.data} ...")
    cluster.start()
    click.echo(f"Mini-Dropbox is running at {cluster.url} (logs in {cluster.log_dir}).")
    click.echo(f"Try: minidropbox --server {cluster.url} signup YOURNAME   (Ctrl-C stops)")
    raise SystemExit(cluster.wait())


@server.command("api")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              help="Data directory (metadata DB, secrets).")
@click.option("--host", default=None)
@click.option("--port", type=int, default=None)
@click.option("--node", "nodes", multiple=True, help="Storage node URL (repeatable).")
@click.option("--replicas", type=int, default=None)
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="API processes on this port (PostgreSQL only; default API_WORKERS, 1).")
@click.option("--port-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help=PORT_FILE_HELP)
def api_command(data_dir: Path | None, host: str | None, port: int | None,
                nodes: tuple[str, ...], replicas: int | None, workers: int | None,
                port_file: Path | None) -> None:
    """Run the API service."""
    import uvicorn

    from minidropbox.api.app import create_app
    from minidropbox.api.timeouts import guarded_protocol
    from minidropbox.api.workers import listening_socket, run_workers
    from minidropbox.malloc import tune_malloc

    settings = load_settings(data_dir=data_dir, host=host, port=port,
                             nodes=list(nodes) or None, replicas=replicas)
    configure_logging(settings.json_logs)
    count = workers if workers is not None else settings.api_workers
    if count > 1 and not settings.effective_database_url.startswith("postgresql"):
        raise click.UsageError("--workers needs PostgreSQL (DATABASE_URL): SQLite has one "
                               "writer and wakes waiting clients in one process.")

    def serve(sock: socket.socket | None) -> None:
        tune_malloc()  # before the first large buffer: see malloc.py
        app = create_app(settings)
        config = uvicorn.Config(
            app, host=settings.host, port=settings.port, log_level="warning",
            http=guarded_protocol(settings.head_timeout, settings.pending_heads,
                                  settings.pending_heads_per_client),
            server_header=False,
            access_log=False, timeout_keep_alive=30,
            ws_ping_interval=settings.ws_ping_interval,
            ws_ping_timeout=settings.ws_ping_interval,
            timeout_graceful_shutdown=settings.shutdown_grace,
            h11_max_incomplete_event_size=64 * 1024,
            # X-Forwarded-* only from the configured proxies (uvicorn's own default
            # would believe any process on this host).
            proxy_headers=bool(settings.trusted_proxies),
            forwarded_allow_ips=settings.trusted_proxies)
        uvicorn.Server(config).run(sockets=[sock] if sock is not None else None)

    sock = (listen_and_tell(settings.host, settings.port, port_file) if port_file
            else listening_socket(settings.host, settings.port) if count > 1 else None)
    logging.getLogger("minidropbox").info(
        "API listening on http://%s:%d", settings.host,
        sock.getsockname()[1] if sock is not None else settings.port)
    if count == 1:
        serve(sock)
        return
    assert sock is not None
    settings.resolve_secrets()  # once, before the fork: every worker signs with the same keys
    raise SystemExit(run_workers(count, sock, serve))


@server.command("storage")
@click.option("--dir", "node_dir", type=click.Path(path_type=Path), required=True,
              help="Directory this node keeps its chunks in.")
@click.option("--host", default=None)
@click.option("--port", type=int, default=None)
@click.option("--port-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help=PORT_FILE_HELP)
def storage_command(node_dir: Path, host: str | None, port: int | None,
                    port_file: Path | None) -> None:
    """Run a storage node (needs MINIDROPBOX_CLUSTER_SECRET, else one is kept in DIR)."""
    import uvicorn

    from minidropbox.api.timeouts import guarded_protocol
    from minidropbox.node.app import create_node_app
    from minidropbox.node.settings import NodeSettings
    from minidropbox.node.zero_copy import with_zero_copy

    overrides: dict[str, Any] = {"dir": node_dir, "host": host, "port": port}
    settings = NodeSettings(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.json_logs)
    app = create_node_app(settings)
    sock = listen_and_tell(settings.host, settings.port, port_file) if port_file else None
    logging.getLogger("minidropbox").info(
        "storage node for %s listening on http://%s:%d", settings.dir, settings.host,
        sock.getsockname()[1] if sock is not None else settings.port)
    # The head deadline keeps connections that never send a complete request (and so never
    # reach the cluster-secret check) from piling up until the node runs out of descriptors.
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                            http=with_zero_copy(guarded_protocol(
                                settings.head_timeout, settings.pending_heads,
                                settings.pending_heads_per_client)),
                            access_log=False, server_header=False, timeout_keep_alive=30,
                            timeout_graceful_shutdown=settings.shutdown_grace,
                            proxy_headers=False)
    uvicorn.Server(config).run(sockets=[sock] if sock is not None else None)


@server.command("backup")
@click.option("--repo", "repo_path", envvar="MINIDROPBOX_BACKUP_REPO",
              type=click.Path(path_type=Path), required=True, help="Backup repository directory.")
@click.option("--every", default=None, help="Interval, e.g. 1h or 30m (default: backup_every).")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              help="The API's data directory (or MINIDROPBOX_DATA_DIR).")
def backup_command(repo_path: Path, every: str | None, data_dir: Path | None) -> None:
    """Run the backup service: a snapshot at start, then on the schedule, then prune."""
    from minidropbox.backup.service import BackupService
    from minidropbox.core.retention import parse_interval

    base = data_dir if data_dir is not None else load_settings().data_dir
    settings = load_settings(data_dir=resolve_data_dir(base))
    try:
        seconds = parse_interval(every or settings.backup_every)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--every") from None
    configure_logging(settings.json_logs)
    service = BackupService(repo_path, settings, seconds)
    service.install_signal_handlers()
    service.run()
