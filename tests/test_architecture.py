"""The house rules of docs/architecture.md, checked on the source (no imports run).

- no import cycles among the product packages' modules;
- ``dlc_tracking`` never imports Dagster, nor the Dagster packages (``dlc_assets``,
  ``resources``, ``sensors``);
- an asset module never imports a command-line module; nothing outside ``dlc_assets.cli``
  imports it;
- every name imported from a product module exists there (a rename that a merge missed
  would otherwise fail only at run time).

Module-level and function-level imports both count: a function-level import is still a
dependency, it only moves the failure to run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dlc_tracking", "dlc_assets", "resources", "sensors")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path, name: str) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    found = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".") if is_package else name.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    """Module -> the product modules it imports."""
    files = {_module_name(f): f for pkg in PACKAGES for f in (ROOT / pkg).rglob("*.py")}
    return {name: {m for m in _imports(f, name) if m in files and m != name}
            for name, f in files.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_no_import_cycles(graph):
    cycles = _cycles(graph)
    assert not cycles, "import cycles (move the shared piece down a layer): " + "; ".join(
        " <-> ".join(c) for c in cycles)


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_core_package_never_imports_dagster_or_the_dagster_layer():
    bad = []
    for f in (ROOT / "dlc_tracking").rglob("*.py"):
        name = _module_name(f)
        for module in _imports(f, name):
            top = module.split(".")[0]
            if top.startswith("dagster") or top in ("dlc_assets", "resources", "sensors"):
                bad.append(f"{name} imports {module}")
    assert not bad, bad


def test_only_the_command_line_imports_the_command_line(graph):
    bad = [f"{name} imports {m}" for name, deps in graph.items()
           if not name.startswith("dlc_assets.cli") for m in deps
           if m.startswith("dlc_assets.cli")]
    assert not bad, bad


def _defined_names(path: Path) -> set[str] | None:
    """Names a module defines or imports at its top level; None when it builds names
    dynamically (``__getattr__``, ``globals()``, star imports), where no static answer
    exists."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return None
        if isinstance(node, ast.Name) and node.id == "globals":
            return None
    for node in tree.body:
        if isinstance(node, ast.If | ast.Try | ast.With):  # guarded definitions
            stmts = [s for s in ast.walk(node) if isinstance(s, ast.stmt)]
        else:
            stmts = [node]
        for stmt in stmts:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                if stmt.name == "__getattr__":
                    return None
                names.add(stmt.name)
            elif isinstance(stmt, ast.Import | ast.ImportFrom):
                names.update((a.asname or a.name).split(".")[0] for a in stmt.names)
            elif isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for target in targets:
                    names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def test_every_name_imported_from_the_product_exists():
    """``from dlc_tracking.x import name``: ``name`` exists in x (or is a submodule of
    the package x). Ruff cannot see this; a merge that renames a function breaks it only
    at run time, in whichever step imports it lazily."""
    roots = (*PACKAGES, "tests", "bench")
    files = {_module_name(f): f for pkg in roots if (ROOT / pkg).is_dir()
             for f in (ROOT / pkg).rglob("*.py")}
    defined = {name: _defined_names(f) for name, f in files.items()}
    missing = []
    for name, f in files.items():
        is_package = f.name == "__init__.py"
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            base = node.module or ""
            if node.level:
                parts = name.split(".") if is_package else name.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            if base not in files or defined[base] is None:
                continue
            for alias in node.names:
                if alias.name not in defined[base] and f"{base}.{alias.name}" not in files:
                    missing.append(f"{name}:{node.lineno} imports {alias.name} from {base}")
    assert not missing, missing
