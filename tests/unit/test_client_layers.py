"""The client's layering (docs/DESIGN.md, "Client layers"), checked so it stays that way:
only ``client/api.py`` names the API root, and endpoints are ``client/remote.py``'s alone."""

from __future__ import annotations

from pathlib import Path

import minidropbox

PACKAGE = Path(minidropbox.__file__).parent


def test_only_api_py_names_the_api_root() -> None:
    naming = {str(path.relative_to(PACKAGE)) for folder in ("client", "cli")
              for path in (PACKAGE / folder).rglob("*.py") if "/api/v1" in path.read_text()}
    assert naming == {"client/api.py"}
