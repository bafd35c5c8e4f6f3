"""The runner and the store: records, statuses, resume, kill-safety."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import TESTS, make_dist, plan_cells, run_cli

from arbench.results.record import Record
from arbench.results.store import Store
from arbench.run.grid import GridSpec
from arbench.run.runner import Runner


def run_grid(registry, tmp_path, **grid):
    cells = plan_cells([GridSpec(**grid)], registry)
    store = Store(tmp_path / "run")
    runner = Runner(registry, store, "cpu", "run")
    runner.run(runner.store.pending(cells))
    return runner, cells, store


def test_ok_record_has_metrics_with_direction_and_provenance(test_registry, tmp_path):
    _, cells, store = run_grid(test_registry, tmp_path, tasks=["density"], samplers=["toy"],
                               datasets=["tiny"], budgets=[4])
    record = store.read(cells[0].key)
    assert record.status == "ok"
    assert record.metrics["nll_bpd"].value == pytest.approx(math.log2(3))
    assert record.metrics["nll_bpd"].direction == "lower"
    assert record.cost.nfe == 1 and record.cost.nfe_reported == 4  # counted: one log_prob pass
    assert record.provenance.device == "cpu"
    assert record.schema_version == 2
    for part, field in (("provenance", "torch_version"), ("provenance", "arbench_version"),
                        ("provenance", "git_commit"), ("cost", "wall_time_s"),
                        ("cost", "peak_memory_mb"), ("provenance", "plugin_versions"),
                        ("configuration", "params"), ("provenance", "finished_at")):
        assert getattr(getattr(record, part), field), field


def test_failures_skips_and_nans_are_recorded_and_the_grid_goes_on(test_registry, tmp_path):
    grid = dict(tasks=["density"], samplers=["toy"], datasets=["tiny"], budgets=[2, 4])
    _, cells, store = run_grid(test_registry, tmp_path, **grid,
                               params={"toy": {"mode": "exploding"}})
    by_budget = {c.budget: store.read(c.key) for c in cells}
    assert by_budget[2].status == "skipped" and "budget 2" in by_budget[2].reason
    assert by_budget[4].status == "failed" and "RuntimeError: boom" in by_budget[4].reason
    _, cells, store = run_grid(test_registry, tmp_path / "nan", **grid,
                               params={"toy": {"mode": "nan"}})
    assert "NaN" in store.read(cells[1].key).reason


def test_rerun_skips_finished_and_retries_failed(test_registry, tmp_path):
    runner, cells, store = run_grid(test_registry, tmp_path, tasks=["density"],
                                    samplers=["toy"], datasets=["tiny"], budgets=[2, 4, 8])
    assert runner.store.pending(cells) == []
    failed = store.read(cells[2].key).model_copy(update={"status": "failed", "reason": "x"})
    store.write(failed)
    assert runner.store.pending(cells) == [cells[2]]
    assert len(runner.store.pending(cells, force=True)) == 3


def test_same_seed_same_numbers(test_registry, tmp_path):
    grid = dict(tasks=["unconditional"], samplers=["toy"], datasets=["tiny"], seeds=[3])
    _, cells, first = run_grid(test_registry, tmp_path / "a", **grid)
    _, _, second = run_grid(test_registry, tmp_path / "b", **grid)
    a, b = first.read(cells[0].key), second.read(cells[0].key)
    assert a.metrics == b.metrics


def test_corrupt_record_is_listed_as_damaged_with_its_path(tmp_path):
    store = Store(tmp_path)
    store.cells_dir.mkdir(parents=True)
    (store.cells_dir / "abc.json").write_text('{"key": "abc", "sta')
    assert list(store.records()) == []
    (path, reason), = store.damaged.items()
    assert path.name == "abc.json" and "not a valid result record (not JSON" in reason
    assert not store.is_finished("abc")


def _testkit_site(tmp_path):
    source = (TESTS / "testkit_plugins.py").read_text()
    return make_dist(tmp_path / "site", "arbench-testkit", {"testkit_plugins": source},
                     {"testkit": "testkit_plugins"})


def test_second_run_recomputes_nothing(tmp_path):
    site = _testkit_site(tmp_path)
    args = ["run", "--task", "density", "--sampler", "toy", "--dataset", "tiny",
            "--budget", "4,8", "--name", "twice"]
    first = run_cli(args, cwd=tmp_path, extra_path=[site])
    assert first.returncode == 0, first.stderr
    assert "2 to run" in first.stderr
    cells = sorted((tmp_path / "results/twice/cells").glob("*.json"))
    stamps = [path.stat().st_mtime_ns for path in cells]
    second = run_cli(args, cwd=tmp_path, extra_path=[site])
    assert "2 already finished, 0 to run" in second.stderr
    assert [path.stat().st_mtime_ns for path in cells] == stamps
    assert "1.585" in second.stdout  # log2(3) bits/dim in the printed table


def test_killed_run_resumes_without_duplicates_or_corruption(tmp_path):
    site = _testkit_site(tmp_path)
    args = ["run", "--task", "density", "--sampler", "toy", "--dataset", "tiny",
            "--seed", "0,1,2,3,4,5", "--set", "toy.mode=slow", "--set", "toy.sleep=0.5",
            "--name", "killed", "--timing-repeats", "0"]
    cells_dir = tmp_path / "results/killed/cells"
    env = dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    process = subprocess.Popen([sys.executable, "-m", "arbench", *args], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while len(list(cells_dir.glob("*.json"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = len(list(cells_dir.glob("*.json")))
    assert 2 <= done_before < 6
    rerun = run_cli(args, cwd=tmp_path, extra_path=[site])
    assert rerun.returncode == 0, rerun.stderr
    assert f"{done_before} already finished" in rerun.stderr
    records = [Record.model_validate_json(path.read_bytes()) for path in cells_dir.glob("*.json")]
    assert len(records) == 6 and len({r.key for r in records}) == 6
    assert {r.identity.seed for r in records} == set(range(6))
    assert all(r.status == "ok" for r in records)
