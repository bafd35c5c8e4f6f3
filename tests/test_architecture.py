"""The core's shape: layers a reader can take bottom-up, checked by import-linter's
contracts (pyproject.toml), no import circle (not even for types), a few modules outside
the subpackages, no plugin named, and every package installed.

The imports of the circle check are read with `ast`, so an import inside a function or
under ``TYPE_CHECKING`` counts as much as one at the top.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO

CORE = REPO / "arbench"


def benchmark(name: str):
    """A module of benchmarks/ (they are scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses need it
    spec.loader.exec_module(module)
    return module


STRUCTURE = benchmark("structure")
module_name = STRUCTURE.module_name


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
    graph = STRUCTURE.core_graph(REPO)
    assert len(graph) > 20 and graph["arbench.run.runner"], "the import reader found nothing"
    found = cycle(graph)
    assert found is None, "import circle in the core: " + " -> ".join(found or [])


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter's contracts of pyproject.toml, on the packages importable from `root`
    first (a copy of the tree there replaces the installed one)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--config",
                           str(REPO / "pyproject.toml"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True)


def test_the_layers_contract_holds_and_fails_on_a_planted_upward_import(tmp_path):
    kept = lint_imports(REPO)
    assert kept.returncode == 0, kept.stdout
    assert "arbench's core in layers KEPT" in kept.stdout
    shutil.copytree(REPO / "arbench", tmp_path / "arbench")
    shutil.copytree(REPO / "plugins", tmp_path / "arbench_plugins")
    record = tmp_path / "arbench" / "results" / "record.py"
    record.write_text(record.read_text() + "\nimport arbench.run.runner  # upward\n")
    broken = lint_imports(tmp_path)
    assert broken.returncode == 1, broken.stdout
    assert "arbench's core in layers BROKEN" in broken.stdout
    assert "arbench.results is not allowed to import arbench.run" in broken.stdout


def test_the_core_keeps_at_most_eight_modules_outside_its_subpackages():
    assert len(list(CORE.glob("*.py"))) <= 8


def test_every_package_is_listed_for_installation():
    """pyproject.toml lists its packages (the plugins' folder is renamed on install)."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"])
    found = {module_name(REPO, path.parent) for path in CORE.rglob("__init__.py")} | {
        module_name(REPO, path.parent).replace("plugins", "arbench_plugins", 1)
        for path in (REPO / "plugins").rglob("__init__.py")}
    assert listed == found


def test_no_plugin_is_named_in_the_core():
    """A string equal to a registered plugin's name appears in the core only in docstrings:
    a task names its own reference sampler, the executor spec says it is the default."""
    from arbench.plugin.kinds import Kind
    from arbench.plugin.registry import registry

    names = {spec.name for kind in Kind for spec in registry().of_kind(kind)}
    found = []
    for path in CORE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
                      and node.body and isinstance(node.body[0], ast.Expr)}
        found += [f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}"
                  for node in ast.walk(tree) if isinstance(node, ast.Constant)
                  and node.value in names and id(node) not in docstrings]
    assert len(names) > 40 and not found, found


def test_every_injection_of_the_gate_sensitivity_benchmark_still_applies(tmp_path):
    """benchmarks/gate_sensitivity.py edits code by exact strings: after a move or a
    rename each must still be found exactly once, or the benchmark measures nothing."""
    module = benchmark("gate_sensitivity")
    for index, injection in enumerate(module.INJECTIONS):
        module.shadow_tree(injection, tmp_path / str(index))  # SystemExit when a string is gone
