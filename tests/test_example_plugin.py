"""A third-party plugin package installs and runs through `arbench run`."""

from __future__ import annotations

import json
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


def test_the_example_speculative_sampler_is_certified_by_arbench_certify(example_site, tmp_path):
    """A third party certifies its own draft-and-verify sampler with no edit to arbench."""
    result = run_cli(["certify", "speculative-marginals", "--results-dir", str(tmp_path)],
                     cwd=tmp_path, extra_path=[example_site])
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if "speculative-marginals" in line]
    assert [row.split("|")[-2].strip() for row in rows][:2] == ["pass", "pass"]
    assert list((tmp_path / "certificates").glob("speculative-marginals-*.json"))


def test_the_example_speculative_sampler_passes_the_cost_contract(example_site, tmp_path):
    """Its draft is counted by arbench (draft_nfe), its acceptance is consistent with the
    MAT arbench computes and its k, and it makes fewer target calls than ancestral."""
    args = ["run", "--task", "unconditional", "--sampler", "speculative-marginals",
            "--model", "pixelcnn", "--no-baselines", "--timing-repeats", "0",
            "--set", "unconditional.n_samples=8", "--set", "unconditional.quality=none"]
    result = run_cli(args, cwd=tmp_path, extra_path=[example_site])
    assert result.returncode == 0, result.stderr
    (path,) = (tmp_path / "results").glob("*/cells/*.json")
    record = json.loads(path.read_text())
    sample = record["diagnostics"]["sample"]
    assert record["status"] == "ok" and record["cost"]["nfe"] < 64
    assert sample["draft_nfe"] == record["cost"]["nfe"]  # one draft call per verification
    assert 1 <= sample["mat"] <= 1 + sample["k"] * sample["acceptance"]
