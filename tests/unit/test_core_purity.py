"""The domain core imports no I/O library (STYLE habit 1)."""

from __future__ import annotations

import ast
from pathlib import Path

import minidropbox.core

FORBIDDEN = {"os", "io", "socket", "sqlite3", "sqlalchemy", "httpx", "fastapi", "starlette",
             "subprocess", "shutil", "pathlib", "asyncio", "requests", "urllib", "open"}


def test_core_imports_no_io() -> None:
    core = Path(minidropbox.core.__file__).parent
    offenders = []
    for path in core.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                names = [node.func.id] if node.func.id == "open" else []
            offenders += [f"{path.name}: {n}" for n in names if n in FORBIDDEN]
    assert offenders == []
