"""Faults of the cost axis and the records (issue 33): each case ends in arbench's own error,
exit code and nothing lost; a verdict cannot be gamed and nothing stale is reused."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from conftest import REPO, TESTS, entry_point, make_dist, plan_cells, run_cli, run_process
from pydantic import ValidationError
from test_faults import DENSITY
from test_image_files import write_cifar

from arbench import Kind
from arbench.errors import GridError, PluginError
from arbench.plugin.registry import PluginImportWarning, build_registry, registry
from arbench.report.build import TaskViews, build_report
from arbench.results.record import Record, record_problem
from arbench.results.statistics import Measured, encode
from arbench.results.store import Store
from arbench.run.grid import GridSpec
from arbench.run.plan import size_bound
from arbench_plugins.datasets.images import Cifar10


def _record(value=1.5, per_example=(1.0, 2.0), **fields):
    metric = {"value": value, "direction": "lower", "unit": "bits/dim"}
    if per_example is not None:
        metric |= {"per_example": encode(np.asarray(per_example)), "ids": "0:2",
                   "paired": True}
    return {"key": "k", "status": "ok", "task": "density", "dataset": "d", "sampler": "s",
            "seed": 0, "nfe": 1, "metrics": {"nll_bpd": metric}, **fields}


@pytest.mark.parametrize(("change", "problem"), [
    ({"value": math.nan}, "not a finite number"),
    ({"value": math.inf}, "not a finite number"),
    ({"value": 1e308}, "float32's range"),
    ({"value": True}, "metrics.nll_bpd.value"),
    ({"per_example": (1.0, math.nan)}, "1 stored value(s) are NaN"),
])
def test_a_record_whose_values_are_not_numbers_is_damaged(change, problem):
    assert record_problem(_record()) is None
    assert problem in record_problem(_record(**change))


def test_a_record_with_a_boolean_nfe_or_negative_timing_is_damaged():
    assert "nfe" in record_problem(_record(nfe=True))
    assert "negative" in record_problem(_record(sampler_timings_s=[-1.0]))


def test_a_schema_1_record_is_migrated_into_its_parts_with_the_same_values(site, tmp_path):
    """A record written before records had parts (a cell of the c1bddb6 smoke leaderboard)
    reads as schema 2 with every value in its part, and the report says it was migrated."""
    flat = json.loads((TESTS / "golden/record-schema1.json").read_text())
    cells = tmp_path / "results/old/cells"
    cells.mkdir(parents=True)
    (cells / f"{flat['key']}.json").write_text(json.dumps(flat))
    store = Store(tmp_path / "results/old")
    [record] = list(store.records())
    assert store.migrated == [cells / f"{flat['key']}.json"] and not store.damaged
    assert record.schema_version == 2 and record.key == flat["key"]
    assert (record.identity.task, record.identity.sampler, record.identity.swept) == (
        flat["task"], flat["sampler"], flat["swept"])
    assert record.configuration.params == flat["params"]
    assert (record.cost.nfe, record.cost.wall_time_s) == (flat["nfe"], flat["wall_time_s"])
    assert record.provenance.code == flat["code"] and record.provenance.run == flat["run"]
    assert record.metrics["snr_db/hidden"].value == flat["metrics"]["snr_db/hidden"]["value"]
    assert record.identity.variant == flat["variant"]  # derived now, the same label
    result = run_cli(["report", "results/old"], cwd=tmp_path, extra_path=[site])
    assert result.returncode == 0, result.stderr
    assert "1 record(s) written by an older arbench (record schema 1)" in result.stderr


def test_a_record_of_a_newer_schema_is_refused_with_what_to_do(tmp_path):
    flat = json.loads((TESTS / "golden/record-schema1.json").read_text())
    newer = {**Record.model_validate(flat).to_json(), "schema_version": 3}
    assert "newer than this arbench reads (2); upgrade arbench" in record_problem(newer)
    cells = tmp_path / "run/cells"
    cells.mkdir(parents=True)
    (cells / "k.json").write_text(json.dumps(newer))
    store = Store(tmp_path / "run")
    assert list(store.records()) == []
    assert "upgrade arbench" in store.damaged[cells / "k.json"]


def test_compare_exits_2_on_a_nan_record_and_report_leaves_it_out(site, tmp_path):
    assert run_cli([*DENSITY, "--seed", "0,1", "--name", "base"], cwd=tmp_path,
                   extra_path=[site]).returncode == 0
    cells = sorted((tmp_path / "results/base/cells").glob("*.json"))
    record = json.loads(cells[0].read_text())
    values = np.full(20, 1.0)
    values[3] = math.nan  # one NaN among the per-example values hid a regression before
    record["metrics"]["nll_bpd"]["per_example"] = encode(values)
    cells[0].write_text(json.dumps(record))
    compared = run_cli(["compare", "results/base", "results/base"], cwd=tmp_path,
                       extra_path=[site])
    assert compared.returncode == 2 and "NaN" in compared.stderr
    report = run_cli(["report", "results/base"], cwd=tmp_path, extra_path=[site])
    assert report.returncode == 0 and "1 damaged record(s) left out" in report.stderr
    rerun = run_cli([*DENSITY, "--seed", "0,1", "--name", "base"], cwd=tmp_path,
                    extra_path=[site])
    assert "1 already finished, 1 to run" in rerun.stderr.replace("\n", " ")


def test_a_nan_per_example_value_fails_the_cell(test_registry, tmp_path):
    from arbench.run.runner import _finite

    assert not _finite(Measured.of_examples([1.0, math.nan]))
    assert not _finite(Measured(1.0, replicates=np.array([1.0, math.inf])))
    assert _finite(Measured.of_examples([1.0, 2.0]))


def test_a_difference_below_float_noise_is_never_bold():
    def rec(key, sampler, shift):
        values = np.linspace(1.0, 2.0, 40) + shift
        return Record.model_validate({
            "key": key, "status": "ok", "task": "density", "dataset": "d",
            "sampler": sampler, "model": "m", "seed": 0, "nfe": 1, "budget": None,
            "params": {}, "swept": {}, "variant": "",
            "metrics": {"nll_bpd": {**Measured.of_examples(values).to_record(),
                                    "direction": "lower", "unit": "bits/dim"}}})

    from arbench.plugin.specs import TableLayout

    layout = TaskViews({"density": TableLayout(rows=("dataset",), columns=("sampler",))})
    for shift, bold in ((3e-8, False), (0.01, True)):
        (table,) = build_report([rec("a", "x", 0.0), rec("b", "y", shift)], layout).tables
        entries = [e for e in table.frame.iloc[0] if hasattr(e, "best")]
        assert any(e.best for e in entries) == bold


def _tones(folder: Path, freqs) -> None:
    folder.mkdir(exist_ok=True)
    t = np.arange(8000) / 8000
    for i, freq in enumerate(freqs):
        soundfile.write(folder / f"tone{i}.wav", 0.5 * np.sin(2 * np.pi * freq * t), 8000)


@pytest.mark.slow
def test_replaced_data_files_rerun_exactly_their_cells(tmp_path):
    data = tmp_path / "audio"
    _tones(data, (220.0, 330.0, 440.0))
    command = ["run", "--task", "superres", "--sampler", "spline", "--dataset", "wavdir",
               "--data-dir", str(data), "--sweep", "superres.ratio=4,8", "--set",
               "superres.n_examples=2", "--set", "wavdir.clip_length=256", "--name", "mine"]
    other = ["run", "--task", "superres", "--sampler", "spline", "--dataset", "digits",
             "--name", "mine", "--set", "superres.n_examples=2"]
    assert run_cli(command, cwd=tmp_path).returncode == 0
    assert run_cli(other, cwd=tmp_path).returncode == 0
    unchanged = run_cli(command, cwd=tmp_path)
    assert "2 already finished, 0 to run" in unchanged.stderr.replace("\n", " ")
    before = {p.name: json.loads(p.read_text()) for p in (tmp_path / "results/mine/cells")
              .glob("*.json")}
    _tones(data, (1000.0, 1500.0, 2500.0))  # new files at the same paths
    rerun = run_cli(command, cwd=tmp_path)
    assert rerun.returncode == 0 and "0 already finished, 2 to run" in rerun.stderr.replace(
        "\n", " ")
    again = run_cli(other, cwd=tmp_path)
    assert "1 already finished, 0 to run" in again.stderr.replace("\n", " ")
    after = {p.name: json.loads(p.read_text()) for p in (tmp_path / "results/mine/cells")
             .glob("*.json")}
    new = set(after) - set(before)
    assert len(new) == 2 and all(after[name]["identity"]["dataset"] == "wavdir" for name in new)


HELPED = {
    "helped_plugin": """\
from arbench import LikelihoodOutput, Sampler, SamplerSpec, hookimpl
from helped_middle import penalty


class Helped(Sampler):
    def nll(self, model, x, budget):
        return LikelihoodOutput(-model.log_prob(x) + penalty(), nfe=1)


@hookimpl
def arbench_samplers():
    return [SamplerSpec(name="helped", factory=Helped, description="NLL plus a helper's",
                        requires=frozenset({"causal-conditionals"}),
                        serves=frozenset({"density"}))]
""",
    "helped_middle": "from helped_helper import PENALTY\n\n\ndef penalty():\n"
                     "    return PENALTY\n",
    "helped_helper": "PENALTY = 0.0\n",
}


def test_editing_a_helper_reached_through_another_module_reruns_its_cells(tmp_path):
    site = make_dist(tmp_path / "site", "arbench-helped",
                     {"testkit_plugins": (TESTS / "testkit_plugins.py").read_text(), **HELPED},
                     {"testkit": "testkit_plugins", "helped": "helped_plugin"})
    command = ["run", "--task", "density", "--sampler", "helped,toy", "--dataset", "tiny",
               "--name", "grid"]
    assert run_cli(command, cwd=tmp_path, extra_path=[site]).returncode == 0
    helper = site / "helped_helper.py"
    helper.write_text("PENALTY = 0.5\n")
    second = run_cli(command, cwd=tmp_path, extra_path=[site])
    assert "1 already finished, 1 to run" in second.stderr.replace("\n", " ")


def test_a_hook_that_raises_or_returns_garbage_is_skipped_with_a_warning(monkeypatch, tmp_path):
    source = ("from arbench import hookimpl\n"
              "@hookimpl\ndef arbench_samplers():\n    raise RuntimeError('no GPU here')\n"
              "@hookimpl\ndef arbench_models():\n    return 'not a list'\n")
    site = make_dist(tmp_path, "garbage-pkg", {"garbage_hooks": source},
                     {"garbage": "garbage_hooks"})
    sys.path.insert(0, str(site))
    monkeypatch.delenv("ARBENCH_STRICT_PLUGINS", raising=False)
    builtins = [entry_point("builtins", "arbench_plugins.samplers"),
                entry_point("garbage", "garbage_hooks")]
    try:
        with pytest.warns(PluginImportWarning) as warned:
            reg = build_registry(builtins)
        assert "ancestral" in reg.names(Kind.SAMPLER)
        messages = " ".join(str(w.message) for w in warned)
        assert "raised RuntimeError: no GPU here" in messages
        assert "returned str; it must return a list of ModelSpec" in messages
        listed = run_process(["list", "sampler"], cwd=tmp_path, extra_path=[site])
        assert listed.returncode == 0 and "ancestral" in listed.stdout
        assert "garbage-pkg" in listed.stderr
        monkeypatch.setenv("ARBENCH_STRICT_PLUGINS", "1")
        with pytest.raises(PluginError, match="garbage_hooks"):
            build_registry(builtins)
    finally:
        sys.path.remove(str(site))


@pytest.mark.parametrize("command", [["report", "results/base"], ["leaderboard", "smoke"]])
def test_a_sampler_name_clash_is_an_error_not_a_traceback(site, tmp_path, command):
    clash = ("from arbench import SamplerSpec, hookimpl\n@hookimpl\ndef arbench_samplers():\n"
             "    return [SamplerSpec(name='toy', factory='x:Y', description='impostor')]\n")
    impostor = make_dist(tmp_path / "impostor", "impostor-pkg", {"impostor_toy": clash},
                         {"impostor": "impostor_toy"})
    assert run_cli([*DENSITY, "--name", "base"], cwd=tmp_path, extra_path=[site]).returncode == 0
    result = run_cli(command, cwd=REPO if command[0] == "leaderboard" else tmp_path,
                     extra_path=[site, impostor])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "two plugins claim the sampler name 'toy'" in result.stderr


@pytest.mark.parametrize(("data", "message"), [
    (np.full((6, 3072), -117, dtype=np.int64), "pixel values -117...-117"),
    (np.full((6, 3072), 300, dtype=np.int64), "pixel values 300...300"),
    (np.zeros((6, 3072)), "holds float64 data"),
])
def test_cifar_values_outside_their_levels_are_refused_naming_the_file(tmp_path, data, message):
    batches = write_cifar(tmp_path)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({**batches["test_batch"], b"data": data},
                                                       protocol=2))
    with pytest.raises(ValueError, match=f"test_batch.*{message}"):
        Cifar10(data_dir=str(tmp_path)).load("test")


def test_a_huge_grid_is_refused_before_expansion_unless_allowed(site, tmp_path):
    grid = GridSpec(tasks=["density"], samplers=["ancestral"], datasets=["digits"],
                    models=["pixelcnn"], seeds=list(range(30_000)))
    assert size_bound(grid, registry()) == 30_000
    with pytest.raises(GridError, match="up to 30,000 cells, more than the limit of 20,000"):
        plan_cells([grid], registry())
    # the limit is max_cells (planning 30,000 cells would take this test 20 s)
    small = dataclasses.replace(grid, seeds=list(range(50)))
    with pytest.raises(GridError, match="up to 50 cells, more than the limit of 49"):
        plan_cells([small], registry(), max_cells=49)
    assert len(plan_cells([small], registry(), max_cells=50)) == 50
    (tmp_path / "grid.yaml").write_text(
        f"tasks: [density]\nsamplers: [toy]\ndatasets: [tiny]\nseeds: {list(range(25_000))}\n")
    refused = run_cli(["run", "--grid", "grid.yaml"], cwd=tmp_path, extra_path=[site])
    assert refused.returncode == 2 and "more than the limit of 20,000" in refused.stderr
    assert "--max-cells" in refused.stderr


def test_a_full_disk_while_saving_samples_fails_the_cell_in_arbench_words(test_registry, tmp_path,
                                                                           monkeypatch):
    from arbench.results.store import Store
    from arbench.run.runner import Runner

    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64")

    monkeypatch.setattr(torch, "save", full)
    grid = GridSpec(tasks=["unconditional"], samplers=["toy"], datasets=["tiny"],
                    params={"unconditional": {"n_samples": 4}}, baselines=False)
    (cell,) = plan_cells([grid], test_registry)
    record = Runner(test_registry, Store(tmp_path / "run"), "cpu", "run").run_one(cell)
    assert record.status == "failed" and "is the disk full?" in record.reason
    assert not list((tmp_path / "run").rglob("*.tmp")) and not list(
        (tmp_path / "run").rglob("samples.pt"))


def test_a_full_disk_while_writing_a_report_leaves_no_partial_file(site, tmp_path):
    assert run_cli([*DENSITY, "--name", "base"], cwd=tmp_path, extra_path=[site]).returncode == 0
    code = ("import errno, os, sys\n"
            "from arbench.cli import app\n"
            "real = os.replace\n"
            "def full(src, dst):\n"
            "    if str(dst).endswith(('.html', '.png', '.csv')):\n"
            "        raise OSError(errno.ENOSPC, 'No space left on device', str(dst))\n"
            "    return real(src, dst)\n"
            "os.replace = full\n"
            "app(['report', 'results/base', '--format', 'html', '--csv', 'long.csv'])\n")
    env = dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot write the report (No space left on device" in result.stderr
    assert not (tmp_path / "long.csv").exists()
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_arbench_import_names_the_real_problem(tmp_path):
    empty, missing = tmp_path / "empty", tmp_path / "missing"
    empty.mkdir()
    for source, message in ((missing, "does not exist"), (empty, "is empty")):
        result = run_cli(["import", "pnf-wavenet", str(source), "--out", "bank"], cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr, result.stderr
    (tmp_path / "taken").write_text("x")
    (empty / "something").write_text("x")
    result = run_cli(["import", "pnf-wavenet", str(empty), "--out", "taken"], cwd=tmp_path)
    assert result.returncode == 2 and "--out taken is an existing file" in result.stderr


def test_released_weights_holding_nan_are_refused(tmp_path):
    from arbench.errors import CheckpointError
    from arbench_plugins.models.pnf.released import read_state_dict

    torch.save({"state_dict": {"a.weight": torch.tensor([1.0, math.nan])}}, tmp_path / "w.pth")
    with pytest.raises(CheckpointError, match="NaN or infinite weights in 1 tensor"):
        read_state_dict(tmp_path / "w.pth")


def test_a_closed_stdout_does_not_stop_the_grid(site, tmp_path):
    env = dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    process = subprocess.Popen([sys.executable, "-m", "arbench", *DENSITY, "--seed", "0,1,2,3",
                                "--name", "piped"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    process.stdout.readline()  # `arbench run ... 2>&1 | head -1`
    process.stdout.close()
    assert process.wait(timeout=120) == 0
    assert len(list((tmp_path / "results/piped/cells").glob("*.json"))) == 4


def test_a_record_keeps_numpy_values_of_a_tasks_extras_as_numbers(tmp_path):
    from arbench.results.record import plain
    from arbench.results.store import Store

    extra = plain({"n": np.int64(3), "shape": (2, 3), "rate": np.float32(0.5),
                   "where": Path("/x")})
    record = Record.model_validate({**_record(), "extra": extra,
                                    "diagnostics": plain({"sample": {"rate": np.float32(0.5)}})})
    Store(tmp_path).write(record)
    (back,) = Store(tmp_path).records()
    assert back.extra == {"n": 3, "shape": [2, 3], "rate": 0.5, "where": "/x"}
    assert back.diagnostics == {"sample": {"rate": 0.5}} and back.metrics == record.metrics
    with pytest.raises(ValidationError):  # unconverted, it is no JSON value: refused
        Record.model_validate({**_record(), "extra": {"n": np.int64(3)}})
