"""The core never imports a debugger module: only pylife/dbg/ may import gdb or lldb."""

from __future__ import annotations

import ast
from pathlib import Path

import pylife

DEBUGGER_MODULES = {"gdb", "lldb", "_gdb", "_lldb"}
ROOT = Path(pylife.__file__).resolve().parent


def _debugger_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if called in ("__import__", "import_module") and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    names = [first.value]
        found += [f"{path.relative_to(ROOT.parent)}:{node.lineno} {name}"  # type: ignore[attr-defined]
                  for name in names if name.split(".")[0] in DEBUGGER_MODULES]
    return found


def test_core_modules_do_not_import_debuggers() -> None:
    core = [p for p in sorted(ROOT.rglob("*.py")) if "dbg" not in p.relative_to(ROOT).parts]
    assert len(core) >= 15, core
    offenders = [hit for path in core for hit in _debugger_imports(path)]
    assert offenders == []


def test_the_scan_sees_adapter_imports() -> None:
    """Guard the guard: the adapters do import their debugger, and the scan finds it."""
    gdb_adapter = ROOT / "dbg" / "gdb.py"
    assert any(hit.endswith(" gdb") for hit in _debugger_imports(gdb_adapter))


def _module_level_imports(path: Path, package: str) -> set[str]:
    """pylife modules imported at module level (not under TYPE_CHECKING, not inside functions)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[: -node.level]
            prefix = ".".join(base + ([node.module] if node.module else []))
            names = [f"{prefix}.{a.name}" for a in node.names] if not node.module else [prefix]
            found.update(names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pylife"):
            found.add(str(node.module))
    return found


def test_render_modules_import_no_cycle() -> None:
    """render/records.py no longer imports render/text.py, which imports it (tables live in render/tables.py)."""
    root = Path(__file__).resolve().parents[2] / "pylife" / "render"
    records = _module_level_imports(root / "records.py", "pylife.render.records")
    tables = _module_level_imports(root / "tables.py", "pylife.render.tables")
    assert "pylife.render.text" not in records and "pylife.render.text" not in tables, (records, tables)
    assert "pylife.render.records" in _module_level_imports(root / "text.py", "pylife.render.text")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path, modules: set[str]) -> set[str]:
    """Every pylife module ``path`` imports, anywhere in it: module level, functions, and under TYPE_CHECKING."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.update(c for c in [module, *(f"{module}.{a.name}" for a in node.names)] if c in modules)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in ROOT.rglob("*.py")}
    return {name: _imported_modules(path, set(paths)) for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search, white/grey/black)."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_no_import_cycle_in_pylife() -> None:
    """Dependencies go one way (session -> recorder, text -> records, commands -> everything below):
    no cycle, counting imports inside functions and under TYPE_CHECKING."""
    graph = import_graph()
    assert len(graph) >= 40 and "pylife.session" in graph["pylife.commands.bt"], graph
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_check_sees_a_cycle() -> None:
    """Guard the guard: the graph builder resolves relative and TYPE_CHECKING imports, and a back edge is a cycle."""
    graph = import_graph()
    assert "pylife.record.recorder" in graph["pylife.session"]
    cycle = find_cycle({**graph, "pylife.record.recorder": graph["pylife.record.recorder"] | {"pylife.session"}})
    assert cycle is not None and cycle[0] == cycle[-1] and {"pylife.record.recorder", "pylife.session"} <= set(cycle)
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
