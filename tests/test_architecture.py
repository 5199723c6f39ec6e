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

from tests.import_graph import find_cycle, graph

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "jinglefs"
FORBIDDEN_IN_SANS_IO = {"asyncio", "socket", "time", "random", "uuid", "secrets", "os", "ssl",
                        "slixmpp", "aioice", "aiortc", "threading", "selectors", "subprocess",
                        "concurrent"}

#: the sans-IO files: the Jingle core and each transport's pure part
SANS_IO = sorted([*(PKG / "jingle").glob("*.py"), PKG / "ibb" / "protocol.py",
                  PKG / "s5b" / "protocol.py", PKG / "s5b" / "wire.py",
                  PKG / "ice" / "protocol.py", PKG / "jet" / "protocol.py",
                  PKG / "jmi" / "protocol.py", PKG / "xmpp" / "caps.py"])

#: third-party package -> the only modules (paths relative to jinglefs/) that may import it
ALLOWED = {
    "aiortc": {"ice/channel.py", "ice/_aiortc.py"},
    "aioice": {"ice/channel.py", "ice/_aiortc.py"},
    "aiolibdatachannel": {"ice/native.py"},
    "slixmpp": {"xmpp/connection.py", "ibb/service.py", "s5b/proxy.py", "ice/servers.py",
                "jmi/service.py"},
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


@pytest.mark.parametrize("path", SANS_IO, ids=lambda p: str(p.relative_to(PKG)))
def test_protocol_parts_are_sans_io(path: Path) -> None:
    assert path.exists()
    assert _top_imports(path) & FORBIDDEN_IN_SANS_IO == set()


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_third_party_network_stacks_stay_in_their_modules(package: str) -> None:
    users = {str(p.relative_to(PKG)) for p in PKG.rglob("*.py") if package in _top_imports(p)}
    assert users <= ALLOWED[package], f"{package} imported outside its home: " \
                                      f"{sorted(users - ALLOWED[package])}"


#: the one module that may touch aiortc/aioice internals (each use explained there)
FENCE = "ice/_aiortc.py"


def _library_internals(source: str) -> list[str]:
    """aiortc/aioice internals used by ``source``: imports of their submodules or of ``_names``,
    ``_attributes`` of names imported from them, subclasses of or assignments to those
    names, and, in a file that imports them (whose objects are not traced by type), any
    ``x._name`` or ``getattr(x, "_name")`` with ``x`` other than ``self``."""
    tree = ast.parse(source)
    found: list[str] = []
    lib: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in {"aiortc", "aioice"}:
                    lib.add((a.asname or a.name).split(".")[0])
                    if "." in a.name:
                        found.append(f"import {a.name}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in {
                "aiortc", "aioice"} and node.level == 0:
            lib.update(a.asname or a.name for a in node.names)
            if "." in (node.module or "") or any(a.name.startswith("_") for a in node.names):
                found.append(f"from {node.module} import {', '.join(a.name for a in node.names)}")

    def private(name: str) -> bool:
        return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            on_lib = isinstance(node.value, ast.Name) and node.value.id in lib
            on_self = isinstance(node.value, ast.Name) and node.value.id == "self"
            if private(node.attr) and (on_lib or (lib and not on_self)):
                found.append(ast.unparse(node))
            elif on_lib and isinstance(node.ctx, ast.Store):
                found.append(f"{ast.unparse(node)} = ...")
        elif isinstance(node, ast.ClassDef):
            found += [f"class {node.name}({ast.unparse(b)})" for b in node.bases
                      if isinstance(b, ast.Name) and b.id in lib]
        elif (lib and isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in {"getattr", "setattr", "hasattr", "delattr"}
              and len(node.args) > 1 and isinstance(node.args[1], ast.Constant)
              and private(str(node.args[1].value))):
            found.append(ast.unparse(node))
    return found


def test_library_internals_stay_behind_the_fence() -> None:
    """Only jinglefs/ice/_aiortc.py uses aiortc/aioice internals; the rest, public API."""
    assert (PKG / FENCE).exists()
    for path in PKG.rglob("*.py"):
        if str(path.relative_to(PKG)) != FENCE:
            used = _library_internals(path.read_text())
            assert not used, f"{path.relative_to(PKG)} uses aiortc/aioice internals " \
                             f"outside {FENCE}: {used}"


def test_the_fence_check_can_fail() -> None:
    bad = ("from aiortc import RTCDtlsTransport, RTCSctpTransport\n"
           "from aiortc.rtcdtlstransport import certificate_digest\n"
           "class S(RTCSctpTransport): pass\n"
           "RTCDtlsTransport.start = None\n"
           "def f(self, dtls): dtls._set_role('client'); getattr(dtls, '_ssl'); self._x\n")
    assert sorted(_library_internals(bad)) == sorted([
        "from aiortc.rtcdtlstransport import certificate_digest", "RTCDtlsTransport.start = ...",
        "class S(RTCSctpTransport)", "dtls._set_role", "getattr(dtls, '_ssl')"])
    assert _library_internals((PKG / FENCE).read_text())  # the fence really uses some
    assert _library_internals("def f(x): return x._y, type(x).__name__\n") == []


def test_no_import_cycles() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_cycle_finder_finds_a_cycle() -> None:
    knot = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}),
            "d": frozenset({"a"})}
    assert find_cycle(knot) in (["a", "b", "c", "a"], ["b", "c", "a", "b"], ["c", "a", "b", "c"])
    assert find_cycle({"a": frozenset({"b"}), "b": frozenset()}) is None


def test_the_graph_sees_relative_imports() -> None:
    """The graph builder sees relative imports (a check that sees nothing passes always)."""
    g = graph()
    assert "jinglefs.driver" in g["jinglefs.client"]
    assert "jinglefs.jingle.session" in g["jinglefs.driver"]


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
    g = graph()
    for name, deps in g.items():
        if name.startswith("jinglefs_ui"):
            bad = {d for d in deps if d.startswith(private)}
            assert not bad, f"{name} imports {sorted(bad)}"
