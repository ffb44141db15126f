"""The package's import graph, read from the source with ``ast``, has no cycle.

Every ``import`` and ``from ... import`` of a package module counts, at module level and inside
functions (a deferred import still ties the two modules together). An edge goes to the module
imported: ``from . import ops`` and ``from .ops import OPS`` both point at ``tinygrad_mlp.ops``,
``from .. import Tensor`` at the package root. As import checkers do, importing ``a.b`` is not
also counted as an import of the package ``a`` whose ``__init__`` Python runs first: every
module would otherwise form a cycle with the package root that re-exports it. (The root imports
``autograd`` first for that reason: the Tensor module imports ``autograd.grad_mode``, and the
autograd package's other modules import the Tensor module.)
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "tinygrad_mlp"
PACKAGE = "tinygrad_mlp"

# Edges still allowed to close a cycle, each with the reason. Only the cycle between the Tensor
# module and the engine (autograd/engine.py, autograd/function.py, compile.py) may stay here, as
# long as it is being taken apart; once an edge is gone, delete its entry (the last test fails on
# an entry that no longer exists). Every other cycle is an error.
ALLOWED = {
    # Tensor.backward imports the engine inside the method; the engine imports the Tensor module.
    ("tinygrad_mlp._tensor", "tinygrad_mlp.autograd.engine"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules that module ``name`` (at ``path``) imports anywhere in its body."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    out.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                base = ".".join([*base, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            if base.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in known else base)
    unknown = {m for m in out if m not in known}
    assert not unknown, f"{name} imports modules that do not exist: {sorted(unknown)}"
    out.discard(name)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules (the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    for start in sorted(edges):
        if start in state:
            continue
        path = [start]
        stack = [iter(sorted(edges[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(edges[nxt])))
    return None


def test_the_graph_is_read():
    edges = graph()
    assert "tinygrad_mlp.ops" in edges["tinygrad_mlp._tensor"]
    assert "tinygrad_mlp.autograd.engine" in edges["tinygrad_mlp.autograd"]
    # the grad modes import nothing of the package, so the Tensor module can import them
    assert edges["tinygrad_mlp.autograd.grad_mode"] == set()
    # the backend imports no module of ours (a simulated device registers itself with it)
    assert edges["tinygrad_mlp.backend"] == set()
    # only the package root's own __init__ imports the package root
    assert [m for m, to in edges.items() if PACKAGE in to] == []
    # the finder sees a cycle when one is there
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    edges = graph()
    for importer, imported in ALLOWED:
        edges[importer].discard(imported)
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_allowed_edges_exist():
    edges = graph()
    gone = [edge for edge in ALLOWED if edge[1] not in edges.get(edge[0], set())]
    assert not gone, f"no longer imported, remove from ALLOWED: {gone}"
