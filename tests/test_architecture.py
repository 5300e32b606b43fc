"""The house rules of docs/architecture.md, checked on the source (no imports run).

- no import cycles among the product packages' modules;
- ``dlc_tracking`` never imports Dagster, nor the Dagster packages (``dlc_assets``,
  ``resources``, ``sensors``);
- an asset module never imports a command-line module; nothing outside ``dlc_assets.cli``
  imports it.

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
