"""docs/ci/arbench-compare.yml works as written: its own shell steps, run in a fresh
virtual environment against examples/arbench-tempered and its committed leaderboard."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig

import pytest
import torch
import yaml
from conftest import REPO

WORKFLOW = yaml.safe_load((REPO / "docs/ci/arbench-compare.yml").read_text())
EXAMPLE = REPO / "examples/arbench-tempered"
STEPS = ("Install arbench and this package (CPU torch)", "Run the suite on this pull request",
         "Compare with the committed leaderboard",
         "Fail on a regression (exit 1) or a broken run (exit 2)")


def _steps() -> dict[str, str]:
    (job,) = WORKFLOW["jobs"].values()
    return {step["name"]: step["run"] for step in job["steps"] if "run" in step}


def test_the_workflow_names_a_source_and_the_files_to_commit():
    text = (REPO / "docs/ci/arbench-compare.yml").read_text()
    assert WORKFLOW["env"]["ARBENCH_SOURCE"] == "./arbench-src"
    assert '"$ARBENCH_SOURCE"' in _steps()[STEPS[0]]
    for committed in ("suite.yaml", "cells/*.json", "README.md"):
        assert f"leaderboards/my-sampler/{committed}" in text
    assert set(STEPS) <= set(_steps())


@pytest.mark.slow
def test_the_workflow_steps_pass_on_the_example_package(tmp_path):
    """Same code as the committed example leaderboard: the steps must end in 'no regression'.
    torch comes from this machine's wheel (the workflow's index is not reachable here)."""
    work = tmp_path / "package"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("*.egg-info", "build"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # The new environment sees this one's packages after its own (a .pth line), so the
    # steps' `pip install` finds torch, pandas, ... already there instead of copying GBs;
    # arbench and the example package are still built and installed by the steps.
    (site_packages,) = venv.glob("lib/python*/site-packages")
    (site_packages / "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    outputs = tmp_path / "github_output"
    outputs.touch()
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "VIRTUAL_ENV": str(venv), "SUITE": "leaderboards/tempered/suite.yaml",
           "ARBENCH_SOURCE": str(REPO), "GITHUB_OUTPUT": str(outputs),
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    version = torch.__version__.split("+")[0]
    for name in STEPS:
        script = _steps()[name].replace(
            "torch --index-url https://download.pytorch.org/whl/cpu", f"torch=={version}")
        code = dict(line.split("=", 1) for line in outputs.read_text().split())
        script = re.sub(r"\$\{\{ steps\.compare\.outputs\.code \}\}", code.get("code", ""),
                        script)
        done = subprocess.run(["bash", "-e", "-c", script], cwd=work, env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, f"{name}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "no regression" in done.stdout
    assert (work / "diff.md").read_text().startswith("## arbench compare: no regression")
