"""The import graph of synthrun/, read from the source (AST): layers and no cycles.

Only imports at module level count (imports inside functions and under ``if TYPE_CHECKING:`` are
deferred and cannot form an import-time circle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import synthrun

ROOT = Path(synthrun.__file__).parent
#: The library layers that must not know the stage contract.
LOWER = ("synthrun.llm", "synthrun.tools", "synthrun.ingest", "synthrun.embeddings")
# Known offenders owned by another branch (helper `toolstages` moves the tool stages' parts out of
# synthrun/tools). The lead empties this list when that branch is merged.
ALLOWED_STAGE_IMPORTS: set[tuple[str, str]] = set()
ALLOWED_CYCLE_MODULES: set[str] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            todo.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            todo.extend(node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body])
    return found


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> set[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module if is_package else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}".rstrip(".")
        # `from pkg import mod` imports the submodule pkg.mod
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    out = set()
    for name in names:
        while name and name not in known:  # `import synthrun.llm.client` -> that module
            name = name.rpartition(".")[0]
        if name.startswith("synthrun"):
            out.add(name)
    return out


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    known = set(files)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        edges: set[str] = set()
        for node in _top_level_imports(tree):
            edges |= _targets(node, module, path.name == "__init__.py", known)
        # importing a.b.c runs a/__init__ and a/b/__init__ first
        graph[module] = {t for t in edges if t != module}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_graph_is_read_from_the_source():
    graph = import_graph()
    assert "synthrun.runner" in graph and "synthrun.stage" in graph["synthrun.runner"]
    assert "synthrun.llm.cache" in graph["synthrun.llm.client"]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_library_layers_do_not_import_the_stage_contract():
    offenders = sorted(
        (module, target)
        for module, targets in import_graph().items() if module.startswith(LOWER)
        for target in targets
        if (target == "synthrun.stage" or target.startswith("synthrun.stages"))
        and (module, target) not in ALLOWED_STAGE_IMPORTS
    )
    assert offenders == []


def test_no_import_cycles():
    cycles = [c for c in find_cycles(import_graph()) if not set(c) <= ALLOWED_CYCLE_MODULES]
    assert cycles == []
