"""The protocol core does no I/O and reads no clock; Qt stays in ui/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_CORE = {"asyncio", "socket", "time", "random", "uuid", "secrets", "os", "ssl",
                     "slixmpp", "aioice", "aiortc", "threading", "selectors"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "jinglefs" / "jingle").glob("*.py")),
                         ids=lambda p: p.name)
def test_jingle_core_is_sans_io(path: Path) -> None:
    assert _imports(path) & FORBIDDEN_IN_CORE == set()


def test_library_never_imports_qt() -> None:
    for path in (ROOT / "jinglefs").rglob("*.py"):
        bad = _imports(path) & {"PySide6", "qasync", "jinglefs_ui"}
        assert not bad, f"{path} imports {bad}"
