"""The supervisor's view of the processes it runs, for the admin views and ``/metrics``.

``minidropbox server cluster`` (``launcher.py``) writes ``DATA/supervisor.json`` whenever a
child exits, is restarted or comes back, and tells the API where it is
(``MINIDROPBOX_SUPERVISOR_STATE``). Outside that launcher (compose, systemd) the file does
not exist and these views are empty: restarts are then the orchestrator's to report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIELDS = {"name": str, "state": str, "restarts": int}


def supervised(path: Path | None) -> list[dict[str, Any]]:
    """``[{name, state, pid, restarts, last_exit, last_exit_at}]``; [] when unsupervised."""
    if path is None:
        return []
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError):
        return []  # not written yet, or being replaced: the next read sees it
    found = body.get("processes") if isinstance(body, dict) else None
    if not isinstance(found, list):
        return []
    return [{"name": p["name"], "state": p["state"], "restarts": p["restarts"],
             "last_exit": p.get("last_exit"), "last_exit_at": p.get("last_exit_at")}
            for p in found
            if isinstance(p, dict) and all(isinstance(p.get(k), t) for k, t in FIELDS.items())]
