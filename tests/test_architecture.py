"""Architecture rules of the package, checked on its source (ast; imports inside functions
count): the module import graph has no cycles, and no module imports an underscore name (a
private module or a private attribute) of another subpackage."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import metainv

SRC = Path(metainv.__file__).resolve().parents[1]


def module_names(src: Path) -> dict[str, Path]:
    names = {}
    for path in sorted((src / "metainv").rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def resolve(module: str, level: int, current: str, is_package: bool) -> str:
    if level == 0:
        return module
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def imports(modules: dict[str, Path]) -> dict[str, set[tuple[str, str | None]]]:
    """module -> {(imported module, imported name or None)}."""
    graph: dict[str, set] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        is_package = path.name == "__init__.py"
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("metainv"):
                        edges.add((alias.name, None))
            elif isinstance(node, ast.ImportFrom):
                target = resolve(node.module or "", node.level, name, is_package)
                if not target.startswith("metainv"):
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in modules:
                        edges.add((sub, None))
                    else:
                        edges.add((target, alias.name))
        graph[name] = edges
    return graph


def subpackage(module: str) -> str:
    return ".".join(module.split(".")[:2])


def private_crossings(graph) -> list[str]:
    bad = []
    for source, edges in graph.items():
        for target, name in edges:
            if subpackage(source) == subpackage(target):
                continue
            parts = target.split(".")[2:] + ([name] if name else [])
            if any(p.startswith("_") and not p.startswith("__") for p in parts):
                bad.append(f"{source} imports {target}{'.' + name if name else ''}")
    return bad


def cycles(graph) -> list[list[str]]:
    adjacency = {m: sorted({t for t, _ in e if t in graph}) for m, e in graph.items()}
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in adjacency[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in adjacency[v]:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in adjacency:
        if v not in index:
            strong(v)
    return out


GRAPH = imports(module_names(SRC))


def test_the_graph_sees_the_whole_package():
    assert {"metainv", "metainv.api", "metainv.family", "metainv.cli"} <= set(GRAPH)
    assert len(GRAPH) > 60
    # a function-level import is an edge too
    assert any(t == "metainv.truss.homogenize" for t, _ in GRAPH["metainv.truss.family"])


def test_no_import_cycles():
    assert cycles(GRAPH) == []


def test_no_private_imports_across_subpackages():
    assert private_crossings(GRAPH) == []


def test_checks_can_fail():
    """The checkers find a planted cycle and a planted private import."""
    planted = {
        "metainv.a.x": {("metainv.b.y", None)},
        "metainv.b.y": {("metainv.a.x", None), ("metainv.a._hidden", None)},
        "metainv.a._hidden": set(),
    }
    assert cycles(planted) == [["metainv.a.x", "metainv.b.y"]]
    assert private_crossings(planted) == ["metainv.b.y imports metainv.a._hidden"]


def test_public_api_is_curated():
    assert "__version__" in metainv.__all__
    for name in metainv.__all__:
        assert hasattr(metainv, name), name
    assert not any(name.startswith("_") and name != "__version__" for name in metainv.__all__)


def test_every_subpackage_says_its_role():
    """Each subpackage's ``__init__`` opens with a docstring (its role in one sentence)."""
    for init in sorted((SRC / "metainv").glob("*/__init__.py")):
        docstring = ast.get_docstring(ast.parse(init.read_text()))
        assert docstring and len(docstring.split()) >= 6, f"{init.parent.name}: no docstring"
