"""The core's shape: no import circle (not even for types) and no plugin imported.

The imports are read with `ast`, so an import inside a function or under
``TYPE_CHECKING`` counts as much as one at the top: the core is a stack of
modules a reader can take bottom-up.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from conftest import REPO

CORE = REPO / "arbench"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def core_imports() -> dict[str, set[str]]:
    """Each core module -> the core modules it imports anywhere in its source."""
    modules = {module_name(path): path for path in CORE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{alias.name}" for alias in node.names]
                targets = [t if t in modules else node.module for t in targets]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph`, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_the_core_has_no_import_circle():
    graph = core_imports()
    assert len(graph) > 20 and graph["arbench.run.runner"], "the import reader found nothing"
    found = cycle(graph)
    assert found is None, "import circle in the core: " + " -> ".join(found or [])


def test_the_core_imports_no_plugin():
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.startswith("arbench_plugins") for n in names), path


def test_every_injection_of_the_gate_sensitivity_benchmark_still_applies(tmp_path,
                                                                        monkeypatch):
    """benchmarks/gate_sensitivity.py edits code by exact strings: after a move or a
    rename each must still be found exactly once, or the benchmark measures nothing."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "gate_sensitivity", REPO / "benchmarks" / "gate_sensitivity.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gate_sensitivity", module)  # its dataclasses need it
    spec.loader.exec_module(module)
    for index, injection in enumerate(module.INJECTIONS):
        module.shadow_tree(injection, tmp_path / str(index))  # SystemExit when a string is gone
