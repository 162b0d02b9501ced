"""The package's import graph: no cycles between modules, no lower layer importing a higher one.

Every ``import`` counts, also those inside functions and under ``TYPE_CHECKING``: a
function-local import only hides a cycle. Read with ``ast``, nothing is imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ssl_rl"

# (lower, higher): no module in or under ``lower`` imports one in or under ``higher``.
LAYERS = (
    ("ssl_rl.figures", "ssl_rl.report"),  # figures draw; the report loads runs and uses them
    ("ssl_rl.data.readers.video_io", "ssl_rl.data.readers.video_arrays"),
)

Graph = dict[str, set[str]]


def module_name(root: Path, file: Path) -> str:
    parts = file.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """The package's modules that ``tree`` (module ``name``) imports anywhere in its body."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, up level - 1
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            # ``from package import module`` imports the module, not only the package.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m in modules and m != name}


def import_graph(root: Path) -> Graph:
    """Module name -> the package's modules it imports, for every ``*.py`` under ``root``."""
    files = {module_name(root, f): f for f in sorted(root.rglob("*.py"))}
    modules = set(files)
    return {
        name: imported_modules(ast.parse(f.read_text()), name, f.stem == "__init__", modules)
        for name, f in files.items()
    }


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


@pytest.fixture(scope="module")
def graph() -> Graph:
    return import_graph(PACKAGE)


def test_the_graph_sees_the_package(graph: Graph) -> None:
    assert "ssl_rl.module" in graph["ssl_rl.run.training"]
    assert "ssl_rl.run.config_resolvers" in graph["ssl_rl"]
    assert len(graph) > 100


def test_no_import_cycles(graph: Graph) -> None:
    assert cycles(graph) == []


@pytest.mark.parametrize(("lower", "higher"), LAYERS)
def test_lower_layer_does_not_import_higher(graph: Graph, lower: str, higher: str) -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        if within(module, lower)
        for target in targets
        if within(target, higher)
    )
    assert wrong == []


def test_a_function_local_import_cycle_is_found(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "a.py").write_text("from pkg.sub.b import thing\n")
    (root / "sub" / "b.py").write_text("def thing():\n    from . import a\n")
    (root / "c.py").write_text("from pkg.sub import a\nimport pkg.sub.b\n")
    graph = import_graph(root)
    assert graph["pkg.sub.b"] == {"pkg.sub", "pkg.sub.a"}
    assert graph["pkg.c"] == {"pkg.sub", "pkg.sub.a", "pkg.sub.b"}
    assert cycles(graph) == [["pkg.sub.a", "pkg.sub.b"]]
