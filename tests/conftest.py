"""Shared fixtures: registries with the test plugins, installable plugin dists, the shipped
models, and the CLI run in this process (or, where a real process is the point, in one)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from arbench.plugin.registry import ENTRY_POINT_GROUP, build_registry, registry

TESTS = Path(__file__).parent
REPO = TESTS.parent
CPU = "cpu"

# the Hugging Face hub is unreachable in every test (the hf family reads local folders only)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

if os.environ.get("PYTEST_XDIST_WORKER"):
    # CI's two pytest workers: one torch thread each (and in their subprocesses), so that
    # the two cores are not oversubscribed
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def entry_point(name: str, module: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name=name, value=module, group=ENTRY_POINT_GROUP)


@pytest.fixture
def test_registry():
    """The built-in plugins plus tests/testkit_plugins.py."""
    builtins = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    return build_registry([*builtins, entry_point("testkit", "testkit_plugins")])


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """tests/testkit_plugins.py installed as the distribution arbench-testkit: a folder to
    put on the path (``run_cli(..., extra_path=[site])``)."""
    return make_dist(tmp_path_factory.mktemp("site"), "arbench-testkit",
                     {"testkit_plugins": (TESTS / "testkit_plugins.py").read_text()},
                     {"testkit": "testkit_plugins"})


def make_dist(root: Path, dist: str, modules: dict[str, str], entry_points: dict[str, str]) -> Path:
    """Write a minimal installed distribution (modules + dist-info) under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source)
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")
    return root


def model_spec(model: str) -> Any:
    """The registered model's spec: its checkpoint resolver and sha256."""
    from arbench import ModelSpec

    return registry().get(ModelSpec, model)


def plan_cells(grids: Sequence[Any], reg: Any = None, **options: Any) -> list[Any]:
    """The cells `grids` plan to, with their inputs taken (keys): what a run would run."""
    from arbench.run.plan import plan
    from arbench.run.provenance import take

    reg = reg or registry()
    return take(plan(grids, reg, **options), reg)


def shipped(model: str, dataset: Any, **params: Any) -> Any:
    """The registered `model` for `dataset` on the CPU, loaded as a cell loads it."""
    import torch

    from arbench import load_model

    return load_model(model, dataset, torch.device(CPU), **params)


@dataclass
class Ran:
    """What a CLI command printed and how it exited (the fields of subprocess's result)."""

    returncode: int
    stdout: str
    stderr: str


def checked(sampler: Any, name: str = "sampler", warm: Any = None) -> Any:
    """`sampler` as a cell's task calls it (`arbench.run.checks.CheckedSampler`): its calls,
    its drafts' and its FLOPs counted, its output checked, one timed replay; `.meter` has
    the counts. With `warm`, the first call is preceded by the warm-up."""
    from arbench.run.checks import CheckedSampler
    from arbench.run.cost import CostMeter

    return CheckedSampler(sampler, name, CostMeter(name, "cpu", set(), 1), warm=warm)


def run_cli(args: Sequence[str], cwd: Path, extra_path: Sequence[Path] = (),
            env: dict[str, str] | None = None, **_: Any) -> Ran:
    """The `arbench` CLI in this process (typer's CliRunner), from `cwd`, with the plugin
    packages under `extra_path` discovered as a fresh interpreter would: the registry is
    rebuilt, and modules loaded from those folders are forgotten afterwards (a test may
    edit them)."""
    from typer.testing import CliRunner

    from arbench.cli import app

    with _plugins_on_path(extra_path), _inside(cwd):
        result = CliRunner(env={"COLUMNS": "200", **(env or {})}).invoke(
            app, list(args), catch_exceptions=False)
    return Ran(result.exit_code, result.stdout, result.stderr)


@contextlib.contextmanager
def _inside(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


@contextlib.contextmanager
def _plugins_on_path(folders: Sequence[Path]) -> Iterator[None]:
    from arbench.run import executor

    added = [str(folder) for folder in folders]
    # A package of the same name imported earlier in this process (the test kit, say) would
    # shadow the one in `folders`: set it aside while they are on the path.
    shadowed = {name: sys.modules.pop(name) for name in list(sys.modules)
                if name.split(".")[0] in _top_level_names(folders)}
    sys.path[:0] = added
    registry.cache_clear()
    try:
        yield
    finally:
        del sys.path[:len(added)]
        for name, module in list(sys.modules.items()):
            if any(str(getattr(module, "__file__", None) or "").startswith(folder)
                   for folder in added):
                del sys.modules[name]
        sys.modules.update(shadowed)
        registry.cache_clear()
        executor.forget_runners()


def _top_level_names(folders: Sequence[Path]) -> set[str]:
    """The modules and packages importable from the top of `folders`."""
    return {entry.stem for folder in folders for entry in Path(folder).iterdir()
            if entry.suffix == ".py" or (entry / "__init__.py").exists()}


def run_process(args: Sequence[str], cwd: Path, extra_path: Sequence[Path] = (),
                **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """The `arbench` CLI in a fresh interpreter: for what only a real process shows
    (signals, exit codes of a killed parent, worker processes, closed pipes)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, extra_path), env.get("PYTHONPATH", "")])
    env["COLUMNS"] = "200"
    env.update(kwargs.pop("env", {}))
    return subprocess.run([sys.executable, "-m", "arbench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, **kwargs)
