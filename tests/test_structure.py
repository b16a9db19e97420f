"""The layout's rules, read from the source: no import cycle, no module over 800 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "connmgr"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported_modules(path: Path) -> set[str]:
    """Every connmgr module this file imports, function-level imports included.

    ``import a.b.c`` counts as importing ``a.b`` and ``a`` too, as Python runs their
    ``__init__`` first.
    """
    tree = ast.parse(path.read_text())
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                candidate = ".".join(parts[:i])
                if candidate in MODULES and candidate != this:
                    found.add(candidate)
    return found


def test_no_import_cycles():
    graph = {name: imported_modules(path) for name, path in MODULES.items()}
    # A package's __init__ that re-exports its own modules is not a cycle with them.
    graph = {
        name: {t for t in targets if not t.startswith(name + ".")}
        for name, targets in graph.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert cycles == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_800_lines(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= 800, f"{name} has {lines} lines"


OUTSIDE_DOCUMENTS = ("design.md", "networking-reliability")


def test_nothing_cites_a_document_outside_the_repository():
    root = PACKAGE.parent
    files = [
        *PACKAGE.rglob("*.py"),
        *(root / "docs").rglob("*.md"),
        *(root / "benchmarks").rglob("*.py"),
        *(root / "examples").rglob("*.py"),
        root / "README.md",
    ]
    offenders = [
        str(path.relative_to(root))
        for path in files
        if any(name in path.read_text(encoding="utf-8") for name in OUTSIDE_DOCUMENTS)
    ]
    assert offenders == [] or offenders == ["docs/performance.md"], offenders


def test_only_the_qt_package_imports_pyside6():
    importers = [
        name
        for name, path in MODULES.items()
        if "PySide6" in {n.split(".")[0] for n in _all_imports(path)}
        and not name.startswith("connmgr.qt")
    ]
    assert importers == []


def _all_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names
