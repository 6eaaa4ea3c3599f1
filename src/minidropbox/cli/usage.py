"""``minidropbox du`` (alias ``quota``): what the account takes, in human units."""

from __future__ import annotations

import click

from minidropbox.cli.state import CliState, pass_state
from minidropbox.client.values import Usage
from minidropbox.core.units import human_bytes


def usage_lines(usage: Usage) -> list[str]:
    """The human report: the quota first, then where the bytes are."""
    if usage.quota_bytes is None:
        quota = f"used   {human_bytes(usage.used_bytes)} (no quota)"
    else:
        share = usage.used_bytes / usage.quota_bytes * 100 if usage.quota_bytes else 100.0
        quota = (f"used   {human_bytes(usage.used_bytes)} of {human_bytes(usage.quota_bytes)}"
                 f" ({share:.0f}%)")
    lines = [quota]
    if usage.free_bytes is not None:
        lines.append(f"free   {human_bytes(usage.free_bytes)}")
    lines += [
        f"files  {human_bytes(usage.current_bytes)} in {usage.files:,} "
        f"file{'s' if usage.files != 1 else ''}",
        f"older versions  {human_bytes(usage.versions_bytes)}",
        f"trash  {human_bytes(usage.trash_bytes)}",
    ]
    if usage.staged_bytes:
        lines.append(f"uploads not committed  {human_bytes(usage.staged_bytes)} (not counted; "
                     "removed after a while if never committed)")
    lines.append("(used counts each stored chunk once, versions and trash included: "
                 "`trash --purge` frees space)")
    return lines


@click.command("du")
@pass_state
def du(state: CliState) -> None:
    """Show the quota: used and free space, older versions and the trash.

    Example: minidropbox du --json"""
    with state.remote() as remote:
        usage = remote.usage()
    state.emit(usage.as_json(), "\n".join(usage_lines(usage)))


