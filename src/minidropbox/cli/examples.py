"""One example per command, shown at the end of its ``--help``, and the "first steps" that
end ``minidropbox --help``.

Kept in one table rather than in each docstring so every command group gets one the same
way; a command whose docstring already ends with an ``Example:`` keeps its own.
``tests/unit/test_cli_help.py`` fails for a command with neither, so a new command comes
with its example.
"""

from __future__ import annotations

import click

EXAMPLES: dict[str, str] = {
    "login": "minidropbox --server nas.local:8000 login alice",
    "logout": "minidropbox logout",
    "whoami": "minidropbox whoami --json",
    "passwd": "minidropbox passwd",
    "put": "minidropbox put ~/Pictures/2024 /Photos/",
    "get": "minidropbox get /Photos/2024 ~/Restored",
    "mkdir": "minidropbox mkdir /Projects/2025/drafts",
    "mv": "minidropbox mv /draft.txt /Projects/final.txt",
    "rm": "minidropbox rm /Projects/old",
    "versions": "minidropbox versions /Projects/final.txt",
    "restore": "minidropbox restore /Projects/final.txt --version 3",
    "undelete": "minidropbox undelete /Projects/old",
    "sync": "minidropbox sync ~/Dropbox --remote / --device laptop",
    "watch": "minidropbox watch --json | jq .path",
    "share accept": "minidropbox share accept 12 --as /Team",
    "share decline": "minidropbox share decline 12",
    "share folder": "minidropbox share folder /Team bob --role editor",
    "share folders": "minidropbox share folders",
    "share invites": "minidropbox share invites",
    "share leave": "minidropbox share leave /Team",
    "share link": "minidropbox share link /Photos/2024 --expires 7d --max-downloads 20",
    "share links": "minidropbox share links /Photos",
    "share members": "minidropbox share members /Team",
    "share remove": "minidropbox share remove /Team bob",
    "share revoke": "minidropbox share revoke 5",
    "share unshare": "minidropbox share unshare /Team",
    "app-password create": "minidropbox app-password create phone",
    "app-password list": "minidropbox app-password list",
    "app-password revoke": "minidropbox app-password revoke phone",
    "server api": "minidropbox server api --data ./data --port 8000",
    "server backup": "minidropbox server backup --repo /mnt/backup --every 6h --data ./data",
    "server cluster": "minidropbox server cluster --data ./data --nodes 3 --replicas 2",
    "server grant-admin": "minidropbox server grant-admin alice --data ./data",
    "server storage": "minidropbox server storage --dir ./node-1 --port 9001",
    "admin check": "minidropbox admin check --nodes",
    "admin invite": "minidropbox admin invite --expires 2d",
    "admin users create": "minidropbox admin users create carol",
    "admin users delete": "minidropbox admin users delete carol --yes",
    "admin users disable": "minidropbox admin users disable carol",
    "admin users enable": "minidropbox admin users enable carol",
    "admin users list": "minidropbox admin users list --json",
    "admin users quota": "minidropbox admin users quota carol 50G",
    "admin users reset-password": "minidropbox admin users reset-password carol",
    "admin drain": "minidropbox admin drain node-3 --wait 600",
    "admin gc": "minidropbox admin gc --dry-run",
    "admin nodes": "minidropbox admin nodes",
    "admin orphans": "minidropbox admin orphans --dry-run",
    "admin rebalance": "minidropbox admin rebalance",
    "admin repair": "minidropbox admin repair",
    "admin status": "minidropbox admin status --json",
    "backup list": "minidropbox backup list --repo /mnt/backup",
    "backup now": "minidropbox backup now --repo /mnt/backup --data ./data",
    "backup prune": "minidropbox backup prune --repo /mnt/backup --keep-last 7 --keep-daily 30",
    "backup restore": "minidropbox backup restore latest --repo /mnt/backup --to ./restored",
    "backup verify": "minidropbox backup verify --repo /mnt/backup --read-data",
}

FIRST_STEPS = """\b
First steps:
  minidropbox server cluster --data ./data     # on the server (or: make run)
  minidropbox --server HOST:8000 signup alice  # states the password rule, then logs in
  minidropbox put ~/Documents /                # upload; only missing chunks are sent
  minidropbox ls -l /Documents
  minidropbox get /Documents/report.pdf .      # download (skips identical files)
  minidropbox sync ~/Dropbox                   # keep a folder in sync, both ways

\b
Shell completion (bash; zsh and fish alike, see README):
  eval "$(_MINIDROPBOX_COMPLETE=bash_source minidropbox)"
"""


def has_example(command: click.Command) -> bool:
    return "Example:" in (command.help or "")


def add_examples(command: click.Command, path: str) -> None:
    """Append the table's example to ``command`` (and to each command below a group)."""
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            add_examples(sub, f"{path} {name}")
        return
    example = EXAMPLES.get(path)
    if example is not None and not has_example(command):
        command.help = (command.help or "").rstrip() + f"\n\nExample: {example}"
