"""The import graph of jinglefs/ and ui/, read from the source (lazy and type-only imports
count), and its layers.

    python -m tests.import_graph        # every module by layer: each imports only lower ones

Used by tests/test_architecture.py (no cycles, the façade rule) and by the README's
"Architecture" section.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "jinglefs"
UI = ROOT / "ui"


def module_name(path: Path) -> str:
    root, name = (UI, "jinglefs_ui") if path.is_relative_to(UI) else (PKG, "jinglefs")
    parts = [name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def graph() -> dict[str, frozenset[str]]:
    """module -> the internal modules it imports (a package's own submodules excluded)."""
    files = {module_name(p): p for base in (PKG, UI) for p in base.rglob("*.py")}
    out: dict[str, frozenset[str]] = {}
    for name, path in files.items():
        base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        deps: set[str] = set()
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
                if t and t != name and not t.startswith(name + "."):
                    deps.add(t)
        out[name] = frozenset(deps)
    return out


def find_cycle(g: dict[str, frozenset[str]]) -> list[str] | None:
    """One import cycle as a path that ends where it starts, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(g[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(g):
        if node not in state and (found := visit(node)):
            return found
    return None


def layers(g: dict[str, frozenset[str]]) -> list[list[str]]:
    """Modules by layer: layer 0 imports nothing internal, layer n only layers below n."""
    depth: dict[str, int] = {}

    def d(node: str) -> int:
        if node not in depth:
            depth[node] = 0  # a cycle would recurse forever; find_cycle() reports those
            depth[node] = 1 + max((d(n) for n in g[node]), default=-1)
        return depth[node]

    for node in g:
        d(node)
    out: list[list[str]] = [[] for _ in range(max(depth.values()) + 1)]
    for node, n in depth.items():
        out[n].append(node)
    return [sorted(layer) for layer in out]


def main() -> None:
    g = graph()
    cycle = find_cycle(g)
    if cycle:
        print("import cycle:", " -> ".join(cycle))
        return
    for n, layer in enumerate(layers(g)):
        print(f"{n:2d}  " + "  ".join(m.removeprefix("jinglefs.") for m in layer))


if __name__ == "__main__":
    main()
