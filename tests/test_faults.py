"""Faults and bad input (issue 17): each case ends in a clear message and exit code, and no
finished record is lost or duplicated. Processes a test starts are ended by pid."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import model_spec, run_cli

from arbench.errors import CheckpointError
from arbench.report.frames import problems_frame
from arbench.results.record import Record
from arbench.results.store import Store, atomic_write
from arbench.run.flags import check_run_name, parse_budget, parse_seed
from arbench.run.grid import GridError, GridSpec, load_grid_file
from arbench.training.checkpoints import load_checkpoint, recorded_sha256

DENSITY = ["run", "--task", "density", "--sampler", "toy", "--dataset", "tiny"]


def _start(args, cwd, site, **kwargs):
    env = dict(os.environ, COLUMNS="200",
               PYTHONPATH=f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return subprocess.Popen([sys.executable, "-m", "arbench", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _children(pid: int) -> set[int]:
    """Processes whose parent is `pid` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for_records(cells_dir: Path, count: int, process) -> None:
    deadline = time.time() + 90
    while len(list(cells_dir.glob("*.json"))) < count and time.time() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)


SLOW_GRID = [*DENSITY, "--seed", "0,1,2,3,4,5,6,7", "--set", "toy.mode=slow",
             "--set", "toy.sleep=1.0", "-j", "2", "--name", "slow", "--timing-repeats", "0"]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_workers_end_within_5_seconds_of_their_parent_being_killed(tmp_path, site):
    process = _start(SLOW_GRID, tmp_path, site)
    _wait_for_records(tmp_path / "results/slow/cells", 1, process)
    workers = _children(process.pid)
    assert len(workers) >= 2
    process.kill()
    process.communicate()
    deadline = time.time() + 5
    while any(_alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.1)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "worker processes outlived their parent"
    records = [Record.model_validate_json(p.read_bytes())
               for p in (tmp_path / "results/slow/cells").glob("*.json")]
    assert len({r.key for r in records}) == len(records)


def test_ctrl_c_ends_the_run_in_one_line_and_keeps_finished_records(tmp_path, site):
    process = _start(SLOW_GRID, tmp_path, site, start_new_session=True)
    _wait_for_records(tmp_path / "results/slow/cells", 2, process)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "interrupted:" in stderr and "run the same command again to resume" in stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    rerun = run_cli(SLOW_GRID, cwd=tmp_path, extra_path=[site])
    assert rerun.returncode == 0, rerun.stderr
    records = [Record.model_validate_json(p.read_bytes())
               for p in (tmp_path / "results/slow/cells").glob("*.json")]
    assert len(records) == 8 and {r.identity.seed for r in records} == set(range(8))


def test_damaged_and_stray_records_are_recomputed_or_ignored_never_fatal(tmp_path, site):
    args = [*DENSITY, "--seed", "0,1", "--name", "damaged"]
    assert run_cli(args, cwd=tmp_path, extra_path=[site]).returncode == 0
    cells = tmp_path / "results/damaged/cells"
    first = sorted(cells.glob("*.json"))[0]
    first.write_text(json.dumps({"key": first.stem, "status": "ok"}))  # readable, incomplete
    (cells / "notes.json").write_text('{"hello": 1}')  # not a record at all
    rerun = run_cli(args, cwd=tmp_path, extra_path=[site])
    assert rerun.returncode == 0, rerun.stderr
    assert "2 damaged record(s) ignored" in rerun.stderr
    assert "1 already finished, 1 to run" in rerun.stderr
    assert json.loads(first.read_text())["metrics"]  # recomputed and replaced
    report = run_cli(["report", "results/damaged"], cwd=tmp_path, extra_path=[site])
    assert report.returncode == 0 and "1 damaged record(s) left out" in report.stderr
    compare = run_cli(["compare", "results/damaged", "results/damaged"], cwd=tmp_path,
                      extra_path=[site])
    assert compare.returncode == 2 and "notes.json" in compare.stderr


def test_run_names_stay_inside_the_results_folder(tmp_path):
    for name in ("../../escape", "/tmp/abs", "a/b", "..", ".hidden", "", 123):
        with pytest.raises(GridError, match="run name"):
            check_run_name(name)
    grid = tmp_path / "grid.yaml"
    grid.write_text("tasks: [density]\nname: ../../../x\n")
    with pytest.raises(GridError, match="grid.yaml: run name"):
        load_grid_file(grid)
    grid.write_text("tasks: [density]\nname: 123\n")
    with pytest.raises(GridError, match="must be a non-empty string"):
        load_grid_file(grid)


def test_cli_refuses_an_escaping_name_before_writing_anything(tmp_path, site):
    result = run_cli([*DENSITY, "--name", "../escape"], cwd=tmp_path, extra_path=[site])
    assert result.returncode == 2 and "plain folder name" in result.stderr
    assert not (tmp_path / "escape").exists() and not (tmp_path / "results").exists()


def test_a_second_writer_of_a_run_folder_exits_2_naming_the_first(tmp_path, site):
    store = Store(tmp_path / "results/locked")
    with store.writer():
        busy = run_cli([*DENSITY, "--name", "locked"], cwd=tmp_path, extra_path=[site])
        waiting = _start([*DENSITY, "--name", "locked", "--wait"], tmp_path, site)
        time.sleep(2)
        assert waiting.poll() is None  # queued behind the lock
    assert busy.returncode == 2
    assert f"another arbench process (pid {os.getpid()}) is writing" in busy.stderr
    _, stderr = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, stderr
    assert not (tmp_path / "results/locked/.lock.pid").exists()


def test_run_exits_3_when_a_cell_failed_and_0_when_cells_were_only_skipped(tmp_path, site):
    failed = run_cli([*DENSITY, "--set", "toy.mode=exploding", "--name", "boom"],
                     cwd=tmp_path, extra_path=[site])
    assert failed.returncode == 3 and "1 cell(s) failed" in failed.stderr
    skipped = run_cli([*DENSITY, "--budget", "2", "--name", "small"], cwd=tmp_path,
                      extra_path=[site])
    assert skipped.returncode == 0, skipped.stderr


def test_budgets_and_seeds_are_bounded():
    with pytest.raises(GridError, match="above arbench's limit"):
        parse_budget("1000000000000")
    with pytest.raises(GridError, match="must lie in 0..4294967295"):
        parse_seed(str(2**32))
    assert parse_seed(str(2**32 - 1)) == 2**32 - 1


def test_unusable_results_folders_get_a_message_not_a_traceback(tmp_path, site):
    (tmp_path / "file").write_text("not a folder")
    result = run_cli([*DENSITY, "--results-dir", "file"], cwd=tmp_path, extra_path=[site])
    assert result.returncode == 2 and "cannot write the run folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_failed_write_leaves_no_partial_file_and_stale_temporaries_are_cleaned(
        tmp_path, monkeypatch):
    def full_disk(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(tmp_path / "report.csv", full_disk)
    assert list(tmp_path.iterdir()) == []
    store = Store(tmp_path / "run")
    store.cells_dir.mkdir(parents=True)
    (store.cells_dir / ".abc.tmp").write_text("")  # left by a writer killed mid-write
    monkeypatch.setattr(json, "dump", full_disk)
    with pytest.raises(OSError):
        store.write(Record(key="k", status="skipped", task="t", dataset="d", sampler="s",
                           seed=0, reason="r"))
    assert [p.name for p in store.cells_dir.iterdir()] == [".abc.tmp"]
    with store.writer():
        assert list(store.cells_dir.iterdir()) == []


def test_yaml_booleans_and_unreadable_grid_files_are_errors(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text('tasks: [density]\nbaselines: "false"\n')
    with pytest.raises(GridError, match="'baselines' must be true or false"):
        load_grid_file(grid)
    grid.write_bytes(b"tasks: [\xff\xfe]\n")
    with pytest.raises(GridError, match="not UTF-8"):
        load_grid_file(grid)
    with pytest.raises(GridError, match="is a folder"):
        load_grid_file(tmp_path)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_checkpoint_faults_are_explained(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"config": {}, "state_dict": {"w": torch.zeros(2)}}, path)
    assert recorded_sha256(path).startswith("unverified:")  # no sidecar: hashed, marked
    with pytest.warns(UserWarning, match="loaded unverified"):
        load_checkpoint(path)
    path.with_suffix(".json").write_text("garbage{")
    with pytest.raises(CheckpointError, match="not a valid checkpoint sidecar"):
        recorded_sha256(path)
    path.with_suffix(".json").write_text('{"command": "arbench train x"}')
    with pytest.raises(CheckpointError, match="not a valid checkpoint sidecar"):
        load_checkpoint(path)
    path.with_suffix(".json").unlink()
    with open(path, "wb") as handle:  # a pickle of an arbitrary object
        pickle.dump({"state_dict": Path("x")}, handle)
    with pytest.raises(CheckpointError, match="never unpickles") as refused:
        load_checkpoint(path)
    assert "weights_only=False" not in str(refused.value)


def test_a_missing_checkpoint_names_the_command_that_trains_one(tmp_path):
    class Folder:
        name, shape, num_levels = "wavdir", (8,), 256
        params = SimpleNamespace(data_dir="/data/piano")

    with pytest.raises(CheckpointError, match=r"arbench train wavenet --dataset wavdir "
                       r"--data-dir /data/piano --out FILE`, then run with "
                       r"`--set wavenet.checkpoint=FILE`"):
        model_spec("wavenet").load_model(Folder(), "cpu", {})


def test_other_data_folders_get_other_run_folders_and_failures_print_plainly():
    def grid(folder):
        return GridSpec(tasks=["superres"], datasets=["wavdir"],
                        params={"wavdir": {"data_dir": folder}})

    assert grid("/a").run_name() != grid("/b").run_name()
    assert grid("/a").run_name() == grid("/a").run_name()
    frame = problems_frame([Record(key="k", status="failed", task="t", dataset="d",
                                   sampler="s", model=None, budget=None, seed=0,
                                   reason="boom")])
    assert (frame.loc[0, "model"], frame.loc[0, "budget"]) == ("-", "default")


def test_progress_is_one_plain_line_per_cell_in_a_log(tmp_path, site):
    result = run_cli([*DENSITY, "--budget", "4,8", "--name", "logged"], cwd=tmp_path,
                     extra_path=[site])
    assert result.returncode == 0, result.stderr
    assert "[1/2] ok density/tiny/uniform/toy" in result.stderr
    assert "[2/2] ok" in result.stderr and "eta" in result.stderr


def test_train_reports_bad_options_and_data_in_one_line(tmp_path):
    result = run_cli(["train", "pixelcnn", "--dataset", "digits", "--out", "x.pt",
                      "--set", "nosuch=1"], cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "pixelcnn on digits: unknown training option(s) ['nosuch']" in result.stderr
