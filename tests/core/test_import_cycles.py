"""No import cycle inside `probe/`, so the core reads as layers: a module's imports never lead back to it.

What counts: every import that runs, wherever it sits: at module level (including under `try`/`if`)
and inside functions, since a function-level import only postpones a cycle to the first call and
hides it from a reader. Imports under `if TYPE_CHECKING:` never run and do not count. An import
`from A import b` leads to the module `A.b` when that is a module, else to `A`; relative imports are
resolved against the importing module's package.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported(tree: ast.Module, name: str, is_package: bool, modules: set[str]) -> list[tuple[int, str, bool]]:
    """(line, imported module inside the package set, inside a function?) for each import of one module."""
    found: list[tuple[int, str, bool]] = []
    package = name if is_package else name.rpartition(".")[0]

    def target(base: str, member: str) -> str:
        return f"{base}.{member}" if f"{base}.{member}" in modules else base

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for statement in node.orelse:
                visit(statement, in_function)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, in_function) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.extend((node.lineno, target(base, alias.name), in_function) for alias in node.names)
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return [(line, mod, fn) for line, mod, fn in found if mod in modules and mod != name]


def import_graph(package: Path) -> dict[str, dict[str, int]]:
    """module -> {module it imports: line of the first such import}, within one package's folder."""
    root = package.parent
    paths = {module_name(p, root): p for p in sorted(package.rglob("*.py"))}
    graph: dict[str, dict[str, int]] = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges: dict[str, int] = {}
        for line, target, _ in imported(tree, name, path.name == "__init__.py", set(paths)):
            edges.setdefault(target, line)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each listed from its
    smallest name; every cycle lies inside one of them."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sorted(found)


def describe(component: list[str], graph: dict[str, dict[str, int]]) -> str:
    """The component's imports as `a -> b (line n)`, so a failure names the lines to look at."""
    members = set(component)
    return "; ".join(f"{a} -> {b} (line {line})" for a in component for b, line in graph[a].items() if b in members)


def test_no_import_cycle_inside_probe():
    graph = import_graph(ROOT / "probe")
    assert len(graph) > 30, "the core's modules were not found"
    assert [describe(c, graph) for c in cycles(graph)] == []


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path / "pkg"


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
    package = _package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg.b import f\n",
            "pkg/b.py": "def f():\n    from . import c\n",
            "pkg/c.py": "import pkg.a\n",
            "pkg/d.py": "from pkg import a\n",  # imports a, is not imported back: no cycle
        },
    )
    graph = import_graph(package)
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]
    assert describe(cycles(graph)[0], graph) == (
        "pkg.a -> pkg.b (line 1); pkg.b -> pkg.c (line 2); pkg.c -> pkg.a (line 1)"
    )


def test_type_checking_imports_and_parent_relative_imports_resolve(tmp_path):
    package = _package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/sub/__init__.py": "from .x import X\n",
            "pkg/sub/x.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..y import Y\nX = 1\n",
            "pkg/y.py": "from .sub import x\n",
        },
    )
    graph = import_graph(package)
    assert graph["pkg.sub"] == {"pkg.sub.x": 1} and graph["pkg.y"] == {"pkg.sub.x": 1}
    assert graph["pkg.sub.x"] == {} and cycles(graph) == []
