"""The third attack round (issue 45): every input is checked before work starts and every
file is read as untrusted; each case ends in a clear message, never a traceback, a hang or a
silently wrong result."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile
import torch
from conftest import REPO, checked, plan_cells, run_cli, run_process
from test_audio_data import write_sine
from test_faults import DENSITY, _alive
from test_faults_records import _record
from test_report_html import record, save
from test_speculative import _with_draft

from arbench.errors import CheckpointError, GridError, Incompatible, ParameterError, TooLarge
from arbench.plugin.registry import registry
from arbench.results.artifacts import SAMPLES_FILE
from arbench.results.record import record_problem
from arbench.results.store import Store
from arbench.run.enumerable import TableData, TableModel
from arbench.run.flags import check_run_name
from arbench.run.grid import GridSpec, load_grid_file, parse_set_options
from arbench.training.checkpoints import save_checkpoint
from arbench.training.processes import usable_cores
from arbench_plugins.datasets.images import _read_image
from arbench_plugins.datasets.wavdir import WavDir
from arbench_plugins.samplers.drafts import NGramDraft, load_draft
from arbench_plugins.samplers.speculative import Speculative


class _Payload:
    def __reduce__(self):
        return (print, ("pwned",))


def test_a_damaged_samples_file_is_named_and_the_rest_of_the_report_is_made(tmp_path):
    run_dir = tmp_path / "results" / "run"
    store = Store(run_dir)
    for key in ("good", "evil", "cut", "odd"):
        store.write(record(key, "unconditional", "digits", f"pnf-{key}", 16))
        save(run_dir, key, "image", (1, 8, 8), {"samples": torch.rand(4, 1, 8, 8)})
    artifacts = run_dir / "artifacts"
    (artifacts / "evil" / SAMPLES_FILE).write_bytes(pickle.dumps({"meta": _Payload()}))
    whole = (artifacts / "cut" / SAMPLES_FILE).read_bytes()
    (artifacts / "cut" / SAMPLES_FILE).write_bytes(whole[: len(whole) // 2])
    torch.save({"meta": {"modality": "image", "shape": [1]}, "tensors": {"x": torch.ones(2)}
                | {"y": torch.zeros(0)}}, artifacts / "odd" / SAMPLES_FILE)

    ran = run_cli(["report", str(run_dir), "--format", "plots,html"], cwd=tmp_path)

    assert ran.returncode == 0, ran.stderr
    said = ran.stderr.replace("\n", " ")
    assert "3 damaged artifact(s)" in said and "pwned" not in ran.stdout + ran.stderr
    for key in ("evil", "cut", "odd"):
        assert f"artifacts/{key}/{SAMPLES_FILE}" in said
    assert "weights_only=False" not in said
    page = (run_dir / "report" / "report.html").read_text()
    assert "pnf-good" in page and page.count("<h3>") == 1  # the one good panel
    assert len(list((run_dir / "report" / "plots").glob("samples_*.png"))) == 1


@pytest.mark.parametrize(("assignment", "allowed"), [
    ("speculative.k=1000000000", "an int >= 1 and <= 65536"),
    ("speculative-jacobi.window=1000000000", "an int >= 0 and <= 65536"),
    ("jacobi.window=1000000000", "an int >= 0 and <= 65536"),
    ("speculative.draft_order=12", "an int >= 1 and <= 8"),
])
def test_size_parameters_have_upper_bounds_checked_when_the_grid_is_planned(assignment,
                                                                             allowed):
    sampler = assignment.split(".")[0]
    grid = GridSpec(tasks=["unconditional"], samplers=[sampler],
                    params=parse_set_options([assignment]))
    with pytest.raises(GridError, match=re.escape(f"{assignment}: {assignment.split('=')[1]} "
                                                  f"is not {allowed}")):
        plan_cells([grid], registry())
    assert "at most the positions left" in Speculative.Params.model_fields["k"].description


def test_k_above_the_positions_left_proposes_no_more_than_those_positions():
    target = TableModel(6, 3, seed=1)
    sampler = checked(_with_draft(Speculative(k=1000), TableModel(6, 3, seed=7)))
    out = sampler.sample(target, TableData(target), 50, None, torch.Generator().manual_seed(0))
    assert out.nfe <= 6
    assert sampler.diagnostics["sample"]["draft_nfe"] <= 6 + 5 + 4 + 3 + 2 + 1  # was 1000/call


def test_a_draft_table_that_cannot_fit_is_refused_before_it_is_allocated(monkeypatch):
    class Bytes:  # 256 levels, like 8-bit images: every context of random bytes is new
        name, num_levels, shape, dims = "bytes", 256, (64,), 64

        @staticmethod
        def load(split):
            return torch.randint(256, (50, 64), generator=torch.Generator().manual_seed(0))

    monkeypatch.setattr("arbench.plugin.memory.free_bytes", lambda device: 100 * 2**20)
    with pytest.raises(TooLarge, match=r"order-8 n-gram draft over 256 levels \(19,063 "
                                       r"contexts seen\) needs about [\d.]+ MB, more than the "
                                       r".* cpu memory free for it; lower speculative's "
                                       r"draft_order"):
        NGramDraft(Bytes(), list(range(64)), 8, torch.device("cpu"))
    bigram = NGramDraft(Bytes(), list(range(64)), 2, torch.device("cpu"))
    assert bigram.table.shape == (258, 256)  # no context, the start, and each of 256 values
    with pytest.raises(Incompatible, match="keys beyond 64 bits; lower speculative's draft_order"):
        NGramDraft(SimpleNamespace(**{**vars(Bytes), "num_levels": 2**16}), [0], 8,
                   torch.device("cpu"))


TRAIN = ["train", "pixelcnn", "--dataset", "digits", "--device", "cpu", "--set", "epochs=1"]


def test_nproc_above_the_cores_present_is_refused_before_torchrun_starts(tmp_path):
    too_many = usable_cores() + 1
    ran = run_process([*TRAIN, "--out", "x.pt", "--nproc", str(too_many)], cwd=tmp_path)
    assert ran.returncode == 2 and "Traceback" not in ran.stderr
    assert (f"--nproc {too_many}: this machine has {usable_cores()} core(s) this process may "
            f"use, one per process; give --nproc {usable_cores()} or fewer") in ran.stderr
    assert "torch.distributed" not in ran.stderr and not (tmp_path / "x.pt").exists()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_a_worker_ends_within_2_seconds_of_its_launcher_being_killed(tmp_path):
    launcher = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        "worker = subprocess.Popen([sys.executable, '-c', 'from arbench import "
        "exit_with_parent; import time; exit_with_parent(); print(flush=True); "
        "time.sleep(60)'], stdout=subprocess.PIPE)\n"
        "worker.stdout.readline()\n"  # it watches its parent now
        "print(worker.pid, flush=True)\n"
        "time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    worker = int(launcher.stdout.readline())
    assert _alive(worker)
    launcher.kill()
    launcher.wait()
    deadline = time.time() + 2
    while _alive(worker) and time.time() < deadline:
        time.sleep(0.05)
    if _alive(worker):
        os.kill(worker, signal.SIGKILL)
        pytest.fail("the worker outlived its launcher")


@pytest.mark.parametrize(("make", "out", "message"), [
    (lambda root: (root / "taken").mkdir(), "taken",
     "--out taken is a folder; give the checkpoint's file path, e.g. taken/model.pt"),
    (lambda root: (root / "plain").write_text("x"), "plain/sub/x.pt",
     "--out plain/sub/x.pt is under plain, which is a file, not a folder"),
    (None, "locked/x.pt", "--out locked/x.pt: cannot write in locked (Permission denied)"),
])
def test_out_is_checked_before_training_starts(tmp_path, monkeypatch, make, out, message):
    from arbench.training import checkpoints

    if make:
        make(tmp_path)
    else:  # a read-only folder (root may write anywhere, so the refusal is simulated)
        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(checkpoints.tempfile, "TemporaryFile", refuse)
    ran = run_cli([*TRAIN, "--out", out], cwd=tmp_path)
    assert ran.returncode == 2 and message in ran.stderr.replace("\n", " ")
    assert "epoch" not in ran.stdout + ran.stderr  # refused before the first epoch


def test_a_checkpoint_that_cannot_be_written_leaves_no_stray_temporary(tmp_path):
    (tmp_path / "model.pt").mkdir()  # made while training ran
    with pytest.raises(IsADirectoryError):
        save_checkpoint(tmp_path / "model.pt", {}, {"w": torch.ones(1)}, {})
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(("cost", "problem"), [
    ({"sampler_time_s": math.nan}, "sampler_time_s nan is not a finite number"),
    ({"wall_time_s": math.inf}, "wall_time_s inf is not a finite number"),
    ({"examples_per_s": -5}, "examples_per_s -5 is negative"),
    ({"flops": -1.0}, "flops -1.0 is negative"),
    ({"sampler_time_s": 2.0, "sampler_timings_s": [1.0, 1.5]},
     "sampler_time_s 2.0 is not the mean of its 2 timing(s), 1.25"),
])
def test_a_record_whose_cost_is_not_finite_or_not_consistent_is_damaged(cost, problem):
    assert record_problem(_record(sampler_time_s=1.25, sampler_timings_s=[1.0, 1.5])) is None
    assert problem in record_problem(_record(**cost))


def test_a_metric_value_edited_away_from_its_per_example_mean_is_damaged(site, tmp_path):
    assert record_problem(_record(value=1.5 + 1e-9)) is None  # float32 storage's noise
    assert "value 1.6 is not the mean of its 2 per-example values, 1.5" in record_problem(
        _record(value=1.6))
    assert run_cli([*DENSITY, "--name", "base"], cwd=tmp_path, extra_path=[site]).returncode == 0
    [cell] = (tmp_path / "results/base/cells").glob("*.json")
    edited = json.loads(cell.read_text())
    edited["metrics"]["nll_bpd"]["value"] -= 0.5  # looks better; its examples say otherwise
    cell.write_text(json.dumps(edited))
    compared = run_cli(["compare", "results/base", "results/base"], cwd=tmp_path,
                       extra_path=[site])
    assert compared.returncode == 2 and "is not the mean of its" in compared.stderr
    rerun = run_cli([*DENSITY, "--name", "base"], cwd=tmp_path, extra_path=[site])
    assert "1 damaged record(s) ignored" in rerun.stderr.replace("\n", " ")
    assert json.loads(cell.read_text())["metrics"]["nll_bpd"]["value"] == pytest.approx(
        edited["metrics"]["nll_bpd"]["value"] + 0.5)


def test_audio_with_non_finite_samples_is_named_and_the_folders_other_clips_kept(tmp_path):
    write_sine(tmp_path / "good" / "a.wav", 1.0)
    write_sine(tmp_path / "good" / "b.wav", 1.0, hz=300.0)
    wave = 0.5 * np.sin(np.arange(8000) / 10)
    wave[[5, 900]] = [math.inf, math.nan]
    soundfile.write(tmp_path / "good" / "bad.wav", wave, 8000, subtype="FLOAT")
    with pytest.warns(UserWarning, match=r"1 of the 3 audio file\(s\) under .*good cannot be "
                                         r"used and are left out; first: .*bad.wav holds 2 NaN "
                                         r"or infinite sample\(s\)"):
        train = WavDir(data_dir=tmp_path / "good", clip_length=256, seed=1).load("train")
    assert int(train.min()) >= 0 and len(train) == 44  # a's and b's 62 clips, 70% of them
    (tmp_path / "only").mkdir()
    (tmp_path / "good" / "bad.wav").rename(tmp_path / "only" / "bad.wav")
    ran = run_cli(["train", "wavenet", "--dataset", "wavdir", "--data-dir", "only", "--out",
                   "x.pt", "--set", "epochs=1"], cwd=tmp_path)
    assert ran.returncode == 2 and "Traceback" not in ran.stderr
    assert "1 of the 1 audio file(s) under" in ran.stderr and "bad.wav holds 2 NaN" in ran.stderr


def test_a_draft_checkpoint_with_the_ngram_draft_is_an_error():
    grid = GridSpec(tasks=["unconditional"], samplers=["speculative"], datasets=["digits"],
                    params=parse_set_options(["speculative.draft_checkpoint=d.pt"]))
    with pytest.raises(ParameterError, match=r"draft_checkpoint is for a model draft; the "
                                             r"n-gram draft .* give speculative.draft=MODEL"):
        plan_cells([grid], registry())
    with pytest.raises(ParameterError, match="draft_order is the n-gram draft's"):
        Speculative(draft="pixelcnn", draft_order=2)
    assert Speculative(draft="pixelcnn", draft_checkpoint="d.pt").models_used() == {
        "pixelcnn": {"checkpoint": "d.pt"}}


def test_a_missing_draft_file_names_the_command_and_the_option_that_takes_it():
    class Digits:
        name, shape, num_levels, dims = "digits", (1, 8, 8), 2, 64
        params = SimpleNamespace()

    with pytest.raises(CheckpointError, match=r"no checkpoint nofile.pt for dataset 'digits'. "
                       r"Train one with `arbench train pixelcnn --dataset digits --out FILE`, "
                       r"then run with `--set speculative.draft_checkpoint=FILE`"):
        load_draft("pixelcnn", Digits(), torch.device("cpu"), list(range(64)),
                   {"checkpoint": "nofile.pt"}, "speculative.draft_checkpoint")


@pytest.mark.parametrize("value", [-1, math.inf, math.nan, 0, 1e9])
def test_the_example_temperature_has_a_range_and_no_parameter_takes_inf_or_nan(value):
    spec = importlib.util.spec_from_file_location(
        "arbench_tempered_module", REPO / "examples/arbench-tempered/arbench_tempered.py")
    tempered = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tempered)
    with pytest.raises(ParameterError, match=r"is not a float > 0 and <= 100"):
        tempered.Tempered(temperature=value)
    grid = GridSpec(tasks=["superres"], samplers=["pnf"],
                    params=parse_set_options(["pnf.delta=.inf"]))
    with pytest.raises(GridError, match=r"pnf.delta=inf: inf is not a float > 0"):
        plan_cells([grid], registry())


@pytest.mark.parametrize("name", ["two\nlines", "tab\there", "bell\a"])
def test_a_run_name_with_a_newline_or_control_character_is_refused(name):
    with pytest.raises(GridError, match="newline or other unprintable character"):
        check_run_name(name)


def test_a_key_given_twice_in_a_grid_file_is_an_error(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("tasks: [density]\nseeds: [0, 1]\nparams:\n  toy: {mode: a}\n"
                    "seeds: [2]\n")
    with pytest.raises(GridError, match=r"grid.yaml: not valid YAML: key 'seeds' is given "
                                        r"twice in one mapping; keep one"):
        load_grid_file(path)
    path.write_text("tasks: [density]\nparams:\n  toy: {mode: a, mode: b}\n")
    with pytest.raises(GridError, match="key 'mode' is given twice"):
        load_grid_file(path)


def test_a_decompression_bomb_image_is_named(tmp_path, monkeypatch):
    from PIL import Image

    Image.new("L", (64, 64)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4096 pixels is over twice this
    with pytest.raises(ValueError, match=r"imagefolder: .*bomb.png is refused as a possible "
                                         r"decompression bomb"):
        _read_image(tmp_path / "bomb.png", None, 8, grey=True)


def test_compare_notes_other_code_and_arbench_versions_keeping_its_exit_code(site, tmp_path):
    assert run_cli([*DENSITY, "--seed", "0,1", "--name", "base"], cwd=tmp_path,
                   extra_path=[site]).returncode == 0
    same = run_cli(["compare", "results/base", "results/base"], cwd=tmp_path,
                   extra_path=[site])
    assert same.returncode == 0 and "Notes" not in same.stdout
    shutil.copytree(tmp_path / "results/base", tmp_path / "results/other")
    for cell in (tmp_path / "results/other/cells").glob("*.json"):
        record = json.loads(cell.read_text())
        record["provenance"]["code"]["sampler:toy"] = "0" * 16
        record["provenance"]["arbench_version"] = "9.9.9"
        cell.write_text(json.dumps(record))
    compared = run_cli(["compare", "results/base", "results/other"], cwd=tmp_path,
                       extra_path=[site])
    said = compared.stdout.replace("\n", " ")
    assert compared.returncode == 0 and "### Notes" in compared.stdout
    assert "2 of the 2 matched cell(s) were made by other code: sampler:toy" in said
    assert "other arbench versions: baseline 0.1.0, current 9.9.9" in said
