"""The house rules, checked on the source: what may import what.

* the protocol core (``jinglefs/jingle``) and every transport's pure protocol module do no
  I/O and read no clock;
* no import cycles anywhere in ``jinglefs/`` or ``ui/`` (lazy and type-only imports count);
* aiortc and aioice only inside the ICE package, slixmpp only in the XMPP glue modules;
* Qt stays in ``ui/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "jinglefs"
FORBIDDEN_IN_SANS_IO = {"asyncio", "socket", "time", "random", "uuid", "secrets", "os", "ssl",
                        "slixmpp", "aioice", "aiortc", "threading", "selectors", "subprocess",
                        "concurrent"}

#: the sans-IO files: the Jingle core and each transport's pure part
SANS_IO = sorted([*(PKG / "jingle").glob("*.py"), PKG / "ibb" / "protocol.py",
                  PKG / "s5b" / "protocol.py", PKG / "s5b" / "wire.py",
                  PKG / "ice" / "protocol.py"])

#: third-party package -> the only modules (paths relative to jinglefs/) that may import it
ALLOWED = {
    "aiortc": {"ice/channel.py", "ice/_aiortc.py"},
    "aioice": {"ice/channel.py", "ice/_aiortc.py"},
    "slixmpp": {"xmpp/connection.py", "ibb/service.py", "s5b/proxy.py", "ice/servers.py"},
}


def _top_imports(path: Path) -> set[str]:
    """Top-level names of absolute imports anywhere in the file (lazy ones too)."""
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _module_name(path: Path) -> str:
    root, name = (ROOT / "ui", "jinglefs_ui") if path.is_relative_to(ROOT / "ui") else (PKG,
                                                                                      "jinglefs")
    parts = [name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _internal_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for base in (PKG, ROOT / "ui") for p in base.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_pkg = path.name == "__init__.py"
        base = name.split(".") if is_pkg else name.split(".")[:-1]
        out: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                anchor = base[: len(base) - node.level + 1] if node.level else []
                mod = ".".join([*anchor, *([node.module] if node.module else [])])
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in files else mod
                           for a in node.names]
            for t in targets:
                while t and t not in files:
                    t = t.rpartition(".")[0]
                # a package importing its own submodules is not a knot
                if t and t != name and not t.startswith(name + "."):
                    out.add(t)
        graph[name] = out
    return graph


@pytest.mark.parametrize("path", SANS_IO, ids=lambda p: str(p.relative_to(PKG)))
def test_protocol_parts_are_sans_io(path: Path) -> None:
    assert path.exists()
    assert _top_imports(path) & FORBIDDEN_IN_SANS_IO == set()


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_third_party_network_stacks_stay_in_their_modules(package: str) -> None:
    users = {str(p.relative_to(PKG)) for p in PKG.rglob("*.py") if package in _top_imports(p)}
    assert users <= ALLOWED[package], f"{package} imported outside its home: " \
                                      f"{sorted(users - ALLOWED[package])}"


def test_no_import_cycles() -> None:
    graph = _internal_graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_cycle_check_can_fail(tmp_path: Path) -> None:
    """The graph builder sees relative imports (a check that sees nothing passes always)."""
    graph = _internal_graph()
    assert "jinglefs.driver" in graph["jinglefs.client"]
    assert "jinglefs.jingle.session" in graph["jinglefs.driver"]


def test_each_transport_lives_in_one_package() -> None:
    for kind in ("ibb", "s5b", "ice"):
        homes = {p.relative_to(PKG).parts[0] for p in PKG.rglob("*.py")
                 if any(part.removesuffix(".py") in {kind, "socks5"} or
                        part.startswith(f"{kind}_") for part in p.relative_to(PKG).parts)}
        assert homes == {kind}, f"{kind} lives in {sorted(homes)}"


def test_library_never_imports_qt() -> None:
    for path in PKG.rglob("*.py"):
        bad = _top_imports(path) & {"PySide6", "qasync", "jinglefs_ui"}
        assert not bad, f"{path} imports {bad}"


def test_ui_talks_to_the_facade_only() -> None:
    """ui/ imports the public modules, never the transports, the core or the driver."""
    private = ("jinglefs.jingle", "jinglefs.ibb", "jinglefs.s5b", "jinglefs.ice",
               "jinglefs.driver", "jinglefs.sending", "jinglefs.receiving", "jinglefs.xmpp")
    graph = _internal_graph()
    for name, deps in graph.items():
        if name.startswith("jinglefs_ui"):
            bad = {d for d in deps if d.startswith(private)}
            assert not bad, f"{name} imports {sorted(bad)}"
