"""Executors: local worker processes, Ray and submitit write the records a plain run writes;
a worker killed mid-cell leaves a failed record and a rerun completes the grid."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli, run_process

from arbench.results.record import Record

GRID = ["run", "--task", "density", "--sampler", "toy", "--dataset", "tiny", "--seed", "0,1,2,3",
        "--budget", "4,8", "--name", "grid"]


def records(folder: Path) -> dict[str, Record]:
    return {path.stem: Record.model_validate_json(path.read_bytes())
            for path in (folder / "results/grid/cells").glob("*.json")}


def outcome(found: dict[str, Record]) -> dict[str, tuple]:
    """What must not depend on the executor: each cell's status, NFE and metric values."""
    return {key: (r.status, r.cost.nfe, {m: v.value for m, v in r.metrics.items()})
            for key, r in found.items()}


@pytest.fixture(scope="module")
def one_at_a_time(site, tmp_path_factory):
    folder = tmp_path_factory.mktemp("local-1")
    result = run_cli(GRID, cwd=folder, extra_path=[site])
    assert result.returncode == 0, result.stderr
    return records(folder)


def test_two_workers_write_the_records_of_one(site, tmp_path, one_at_a_time):
    result = run_cli([*GRID, "-j", "2"], cwd=tmp_path, extra_path=[site])
    assert result.returncode == 0, result.stderr
    assert "2 at a time" in result.stderr  # the console's progress lines
    found = records(tmp_path)
    assert outcome(found) == outcome(one_at_a_time) and len(found) == 8
    # two worker processes shared the cells, neither of them the CLI's own process
    workers = {r.provenance.worker for r in found.values()}
    assert len(workers) == 2
    assert not workers & {r.provenance.worker for r in one_at_a_time.values()}


def test_a_killed_worker_leaves_a_failed_record_and_a_rerun_completes(site, tmp_path):
    marker = tmp_path / "killed-once"
    grid = ["run", "--task", "density", "--sampler", "toy", "--dataset", "tiny",
            "--seed", "0,1,2", "--sweep", "toy.mode=ok,die-once",
            "--set", f"toy.marker={marker}", "--name", "grid", "-j", "2"]
    first = run_cli(grid, cwd=tmp_path, extra_path=[site])
    assert first.returncode == 3, first.stderr  # a cell failed: exit 3, the rest finished
    found = records(tmp_path)
    failed = [r for r in found.values() if r.status == "failed"]
    assert len(found) == 6 and len(failed) == 1 and marker.exists()
    assert "worker process died (exit code -9)" in failed[0].reason
    assert failed[0].configuration.params["toy"]["mode"] == "die-once"
    assert sum(r.status == "ok" for r in found.values()) == 5  # the grid went on
    again = run_cli(grid, cwd=tmp_path, extra_path=[site])
    assert again.returncode == 0, again.stderr
    assert "5 already finished, 1 to run" in again.stderr.replace("\n", " ")
    assert all(r.status == "ok" for r in records(tmp_path).values())


@pytest.mark.slow
def test_ray_runs_the_grid_to_the_same_records(site, tmp_path, one_at_a_time):
    pytest.importorskip("ray", reason="the ray executor needs arbench[ray]; CI installs it")
    result = run_process([*GRID, "--executor", "ray", "--executor-set", "cpus=1"], cwd=tmp_path,
                     extra_path=[site])
    assert result.returncode == 0, result.stderr
    assert outcome(records(tmp_path)) == outcome(one_at_a_time)


@pytest.mark.slow
def test_slurm_through_submitits_local_executor_gives_the_same_records(site, tmp_path,
                                                                        one_at_a_time):
    pytest.importorskip("submitit", reason="the slurm executor needs arbench[slurm]; CI has it")
    result = run_process([*GRID, "--executor", "slurm", "--executor-set", "cluster=local",
                      "--executor-set", "cpus=1"], cwd=tmp_path, extra_path=[site])
    assert result.returncode == 0, result.stderr
    assert outcome(records(tmp_path)) == outcome(one_at_a_time)
    assert list((tmp_path / "results/grid/slurm").glob("*_log.out"))  # submitit's job logs


def test_unknown_executor_and_bad_options_are_clear_errors(site, tmp_path):
    result = run_cli([*GRID, "--executor", "rey"], cwd=tmp_path, extra_path=[site])
    assert result.returncode == 2 and "Did you mean 'ray'?" in result.stderr
    result = run_cli([*GRID, "-j", "0"], cwd=tmp_path, extra_path=[site])
    assert result.returncode == 2 and "--jobs 0" in result.stderr
    result = run_cli([*GRID, "--executor-set", "jobs"], cwd=tmp_path, extra_path=[site])
    assert result.returncode == 2 and "KEY=VALUE" in result.stderr


def test_workers_split_the_cores_and_take_one_gpu_each(monkeypatch):
    import torch

    from arbench.run.executor import CellJob
    from arbench_plugins.executors import local

    monkeypatch.setattr(local, "usable_cores", lambda: 16)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    on_gpus = local.worker_jobs(CellJob("run", "run", "cuda"), 4)
    assert [job.device for job in on_gpus] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert {job.threads for job in on_gpus} == {4}
    on_cpu = local.worker_jobs(CellJob("run", "run", "cpu"), 3)
    assert [job.device for job in on_cpu] == ["cpu"] * 3 and on_cpu[0].threads == 5
    monkeypatch.setattr(local, "usable_cores", lambda: 2)
    assert local.worker_jobs(CellJob("run", "run", "cpu"), 4)[0].threads == 1  # never 0
