"""Shared fixtures: registries with the test plugins, and installable plugin dists."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from arbench.plugin.registry import ENTRY_POINT_GROUP, build_registry

TESTS = Path(__file__).parent
REPO = TESTS.parent

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


@pytest.fixture
def site(tmp_path):
    """tests/testkit_plugins.py installed as the distribution arbench-testkit (a folder to
    put on PYTHONPATH); some modules keep a module-scoped one of their own."""
    return make_dist(tmp_path / "site", "arbench-testkit",
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


def run_cli(args: list[str], cwd: Path, extra_path: list[Path] = (), **kwargs):
    """Run the `arbench` CLI in a fresh interpreter (so entry points are rediscovered)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, extra_path), env.get("PYTHONPATH", "")])
    env["COLUMNS"] = "200"
    return subprocess.run([sys.executable, "-m", "arbench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, **kwargs)
