"""The code's shape in numbers: files per folder, the longest function, the core's import
levels, and the path one cell takes from `arbench run` to its record.

    python benchmarks/structure.py            # the checkout this file is in
    python benchmarks/structure.py --no-trace # without running a cell

The path is traced, not read: one cell (`arbench run --task density --sampler ancestral
--dataset digits --model pixelcnn`) runs in this process under `sys.setprofile`, and every
call and return moves "where we are" to the innermost frame of arbench's core (plugin and
library frames are passed through). The walk is that sequence with repeats folded: how
many core modules it enters, how many steps it takes from one to another, and how often
it goes back to a module it had already left. The same walk is then folded to the core's
parts (``arbench.run``, ``arbench.results``, ...: the first two name components), which
in a flat core are its modules.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CORE = "arbench"


def tracked_python(root: Path) -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "*.py"], cwd=root, capture_output=True,
                            text=True, check=True).stdout.split()
    return [root / name for name in listed]


def files_per_folder(root: Path) -> Counter[str]:
    """Python files per folder, two levels deep (``arbench/run``, ``plugins/models``)."""
    counts: Counter[str] = Counter()
    for path in tracked_python(root):
        parts = path.relative_to(root).parts[:-1]
        counts["/".join(parts[:2]) or "."] += 1
    return counts


def longest_functions(root: Path, top: int = 3) -> list[tuple[int, str]]:
    """The longest functions of the core and the plugins, in lines."""
    found = []
    for path in tracked_python(root):
        relative = path.relative_to(root)
        if relative.parts[0] not in (CORE, "plugins", "arbench_plugins"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                found.append((length, f"{relative}:{node.name}"))
    return sorted(found, reverse=True)[:top]


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def core_graph(root: Path) -> dict[str, set[str]]:
    """Each core module -> the core modules it imports anywhere in its source."""
    modules = {module_name(root, path): path for path in (root / CORE).rglob("*.py")}
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
            graph[name] |= {t for t in targets if t in modules and t != name and t != CORE}
    return graph


def import_levels(graph: dict[str, set[str]]) -> int:
    """The number of modules on the longest import chain (1: nothing imports anything)."""
    depth: dict[str, int] = {}

    def level(name: str, path: tuple[str, ...] = ()) -> int:
        if name in path:  # a circle: count it once
            return 0
        if name not in depth:
            depth[name] = 1 + max((level(t, (*path, name)) for t in graph[name]), default=0)
        return depth[name]

    return max((level(name) for name in graph), default=0)


def trace_one_cell(results: Path) -> list[str]:
    """The core modules one `arbench run` cell passes through, repeats folded: each core
    function is followed the first time it runs (a loop over metrics or positions is one
    visit), and its return leads back to its caller's module."""
    from typer.testing import CliRunner

    from arbench.cli import app

    walk: list[str] = []
    seen: set[object] = set()
    followed: set[int] = set()

    def core(frame: Any) -> str | None:
        module = frame.f_globals.get("__name__", "") if frame is not None else ""
        return module if module == CORE or module.startswith(CORE + ".") else None

    def caller(frame: Any) -> str | None:
        frame = frame.f_back
        while frame is not None and core(frame) is None:
            frame = frame.f_back
        return core(frame)

    def step(module: str | None) -> None:
        if module is not None and (not walk or walk[-1] != module):
            walk.append(module)

    def profile(frame: Any, event: str, arg: object) -> None:
        module = core(frame)
        if module is None:
            return
        if event == "call" and frame.f_code not in seen:
            seen.add(frame.f_code)
            followed.add(id(frame))
            step(caller(frame))
            step(module)
        elif event == "return" and id(frame) in followed:
            followed.discard(id(frame))
            step(caller(frame))

    args = ["run", "--task", "density", "--sampler", "ancestral", "--dataset", "digits",
            "--model", "pixelcnn", "--results-dir", str(results), "--timing-repeats", "1"]
    sys.setprofile(profile)
    try:
        outcome = CliRunner().invoke(app, args)
    finally:
        sys.setprofile(None)
    if outcome.exit_code != 0:
        raise SystemExit(f"the traced run failed:\n{outcome.output}")
    return walk


def fold(walk: list[str], depth: int) -> list[str]:
    """The walk with each module cut to its first ``depth`` name components, repeats folded."""
    folded: list[str] = []
    for module in walk:
        part = ".".join(module.split(".")[:depth])
        if not folded or folded[-1] != part:
            folded.append(part)
    return folded


def describe_walk(what: str, walk: list[str]) -> None:
    entered = Counter(walk)
    returns = len(walk) - len(entered)
    print(f"one cell from `arbench run` to its record, {what}: {len(entered)} entered, "
          f"{len(walk) - 1} steps, {returns} returns to one already left")
    for name, times in entered.most_common(8):
        print(f"  {times:5d} x {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-trace", action="store_true", help="skip running a cell")
    args = parser.parse_args()
    counts = files_per_folder(REPO)
    print("python files per folder:")
    for folder, count in sorted(counts.items()):
        print(f"  {folder:32s} {count:4d}")
    top_level = sum(1 for p in (REPO / CORE).glob("*.py"))
    print(f"modules directly in {CORE}/: {top_level}")
    for length, name in longest_functions(REPO):
        print(f"long function: {length:4d} lines  {name}")
    graph = core_graph(REPO)
    print(f"core modules: {len(graph)}; import levels (longest chain): {import_levels(graph)}")
    if args.no_trace:
        return
    with tempfile.TemporaryDirectory() as results:
        walk = trace_one_cell(Path(results))
    describe_walk("core modules", walk)
    describe_walk("core parts", fold(walk, 2))


if __name__ == "__main__":
    main()
