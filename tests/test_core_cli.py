"""The command line: clear errors for bad input, tables for good input."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import run_cli


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


def test_report_of_a_truncated_record_names_it_and_leaves_it_out(site, tmp_path):
    run_cli(["run", "--task", "density", "--sampler", "toy", "--dataset", "tiny",
             "--name", "cut"], cwd=tmp_path, extra_path=[site])
    (record,) = (tmp_path / "results/cut/cells").glob("*.json")
    record.write_text(record.read_text()[:40])
    result = run_cli(["report", "results/cut"], cwd=tmp_path, extra_path=[site])
    assert result.returncode == 0, result.stderr
    assert "1 damaged record(s) left out" in result.stderr and record.name in result.stderr


def test_report_writes_csv_and_aggregates_seeds(site, tmp_path):
    run_cli(["run", "--task", "unconditional", "--sampler", "toy", "--dataset", "tiny",
             "--seed", "0,1,2", "--name", "seeds", "--no-baselines"], cwd=tmp_path,
            extra_path=[site])
    result = run_cli(["report", "results/seeds", "--csv", "long.csv"], cwd=tmp_path,
                     extra_path=[site])
    assert result.returncode == 0, result.stderr
    assert "±" in result.stdout and "| 3 " in result.stdout.replace("|       3 ", "| 3 ")
    long = pd.read_csv(tmp_path / "long.csv")
    # per seed: a metric, a timing, the speed-up against the reference timed in turn with
    # it in the cell (no reference cell needed) and the compute counted
    assert set(long["metric"]) == {"sample_nll_bpd", "sampler_s", "speedup", "positions",
                                   "flops"}
    assert sorted(long["seed"]) == [0] * 5 + [1] * 5 + [2] * 5


def test_report_without_runs_takes_the_newest_and_writes_formats(site, tmp_path):
    for name in ("older", "newer"):
        run_cli(["run", "--task", "density", "--sampler", "toy", "--dataset", "tiny",
                 "--name", name], cwd=tmp_path, extra_path=[site])
    result = run_cli(["report", "--format", "html,latex,markdown"], cwd=tmp_path,
                     extra_path=[site])
    assert result.returncode == 0, result.stderr
    written = {p.name for p in (tmp_path / "results/newer/report").iterdir()}
    assert written == {"report.html", "report.tex", "report.md", "plots"}
    assert not (tmp_path / "results/older/report").exists()
    merged = run_cli(["report", "results/older", "results/newer", "--format", "csv"],
                     cwd=tmp_path, extra_path=[site])
    assert merged.returncode == 0, merged.stderr
    assert (tmp_path / "results/report-older+newer/tables.csv").is_file()


def test_report_with_unknown_format_or_no_runs_is_a_clear_error(site, tmp_path):
    result = run_cli(["report"], cwd=tmp_path, extra_path=[site])
    assert result.returncode == 2 and "no runs under results/" in result.stderr
    run_cli(["run", "--task", "density", "--sampler", "toy", "--dataset", "tiny"],
            cwd=tmp_path, extra_path=[site])
    result = run_cli(["report", "--format", "pdf"], cwd=tmp_path, extra_path=[site])
    assert result.returncode == 2 and "unknown reporter 'pdf'" in result.stderr
