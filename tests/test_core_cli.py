"""The command line: clear errors for bad input, tables for good input."""

from __future__ import annotations

import pytest
from conftest import TESTS, make_dist, run_cli


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    source = (TESTS / "testkit_plugins.py").read_text()
    return make_dist(tmp_path_factory.mktemp("site"), "arbench-testkit",
                     {"testkit_plugins": source}, {"testkit": "testkit_plugins"})


def test_unknown_sampler_lists_known_names_and_suggests(site, tmp_path):
    result = run_cli(["run", "--task", "density", "--sampler", "ancestrl"], cwd=tmp_path,
                     extra_path=[site])
    assert result.returncode == 2
    assert "unknown sampler 'ancestrl'" in result.stderr
    assert "Did you mean 'ancestral'?" in result.stderr and "toy" in result.stderr


def test_unknown_task_suggests(site, tmp_path):
    result = run_cli(["run", "--task", "unconditonal", "--sampler", "toy"], cwd=tmp_path,
                     extra_path=[site])
    assert result.returncode == 2 and "Did you mean 'unconditional'?" in result.stderr


@pytest.mark.parametrize("budget", ["0", "-4", "many"])
def test_bad_budget_is_a_clear_error(site, tmp_path, budget):
    result = run_cli(["run", "--task", "density", "--sampler", "toy", f"--budget={budget}"],
                     cwd=tmp_path, extra_path=[site])
    assert result.returncode == 2
    assert "budget" in result.stderr and "Traceback" not in result.stderr


def test_incompatible_pair_is_recorded_as_skipped(site, tmp_path):
    result = run_cli(["run", "--task", "unconditional", "--sampler", "needs-ardm",
                      "--dataset", "tiny", "--name", "skip"], cwd=tmp_path, extra_path=[site])
    assert result.returncode == 0, result.stderr
    assert "skipped" in result.stdout and "does not serve task 'unconditional'" in result.stdout


def test_report_of_a_truncated_record_is_a_clear_error(site, tmp_path):
    run_cli(["run", "--task", "density", "--sampler", "toy", "--dataset", "tiny",
             "--name", "cut"], cwd=tmp_path, extra_path=[site])
    (record,) = (tmp_path / "results/cut/cells").glob("*.json")
    record.write_text(record.read_text()[:40])
    result = run_cli(["report", "results/cut"], cwd=tmp_path, extra_path=[site])
    assert result.returncode == 2 and record.name in result.stderr


def test_report_writes_csv_and_aggregates_seeds(site, tmp_path):
    run_cli(["run", "--task", "unconditional", "--sampler", "toy", "--dataset", "tiny",
             "--seed", "0,1,2", "--name", "seeds", "--no-baselines"], cwd=tmp_path,
            extra_path=[site])
    result = run_cli(["report", "results/seeds", "--csv", "long.csv"], cwd=tmp_path,
                     extra_path=[site])
    assert result.returncode == 0, result.stderr
    assert "±" in result.stdout and "| 3 " in result.stdout.replace("|       3 ", "| 3 ")
    assert len((tmp_path / "long.csv").read_text().splitlines()) == 4  # header + 3 seeds
