"""A third-party plugin package installs and runs through `arbench run`."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO, run_cli


@pytest.fixture(scope="module")
def example_site(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(REPO / "examples/arbench-tempered")],
        check=True, capture_output=True, text=True,
    )
    return target


def test_example_sampler_is_discovered(example_site, tmp_path):
    result = run_cli(["list", "sampler"], cwd=tmp_path, extra_path=[example_site])
    assert result.returncode == 0, result.stderr
    assert "tempered" in result.stdout and "arbench-tempered" in result.stdout


def test_example_sampler_runs_in_a_grid(example_site, tmp_path):
    args = ["run", "--task", "unconditional", "--sampler", "tempered", "--budget", "64",
            "--model", "pixelcnn", "--no-baselines",
            "--set", "tempered.temperature=0.7", "--set", "unconditional.n_samples=8"]
    result = run_cli(args, cwd=tmp_path, extra_path=[example_site])
    assert result.returncode == 0, result.stderr
    assert "tempered" in result.stdout and "sample_nll_bpd" in result.stdout
    (record,) = (tmp_path / "results").glob("*/cells/*.json")
    assert '"status": "ok"' in record.read_text()
