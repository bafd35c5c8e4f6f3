"""What makes a verdict trustworthy: per-example records, code-following keys, honest
conditions (samplers never see the hidden truth)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TESTS, make_dist, plan_cells, run_cli

from arbench.results.statistics import Measured
from arbench.results.store import Store
from arbench.run.grid import GridSpec
from arbench.run.runner import Runner

AUDIO = {"piano": {"clip_length": 256, "n_test": 8}}


@pytest.mark.parametrize("task", ["superres", "inpainting"])
def test_a_sampler_that_copies_hidden_values_learns_nothing_from_them(test_registry,
                                                                          tmp_path, task):
    grid = GridSpec(tasks=[task], samplers=["peek"], datasets=["piano"], params={
        **AUDIO, task: {"n_examples": 8}, **({"superres": {"ratio": 4, "n_examples": 8}}
                                             if task == "superres" else {})})
    cells = [cell for cell in plan_cells([grid], test_registry) if "ratio=8" not in cell.variant
             and "ratio=16" not in cell.variant]
    runner = Runner(test_registry, Store(tmp_path / "run"), "cpu", "run")
    snr = {}
    for cell in cells:
        record = runner.run_one(cell)
        assert record.status == "ok", record.reason
        metric = next(name for name in record.metrics if name.startswith("snr_db"))
        snr[cell.sampler] = record.metrics[metric].value
    assert set(snr) == {"peek", "spline"}
    if task == "superres":
        assert snr["peek"] < snr["spline"]  # zeros between the observed samples
    else:  # scored on the gap alone: zeros there give exactly 0 dB, the truth +inf
        assert snr["peek"] == 0.0


def test_records_keep_per_example_values_compactly(test_registry, tmp_path):
    cells = plan_cells([GridSpec(tasks=["density"], samplers=["toy"], datasets=["tiny"])],
                       test_registry)
    record = Runner(test_registry, Store(tmp_path / "run"), "cpu", "run").run_one(cells[0])
    entry = record.metrics["nll_bpd"]
    measured = entry.measured()
    assert entry.ids == "0:20" and entry.paired is True
    np.testing.assert_allclose(measured.per_example, np.log2(3), rtol=1e-6)
    assert measured.value == pytest.approx(np.log2(3))
    assert set(record.provenance.code) == {"core", "task:density", "dataset:tiny", "model:uniform",
                                   "sampler:toy", "metric:nll_bpd"}
    assert record.provenance.git_dirty is not None


def test_ten_thousand_examples_stay_a_small_record():
    values = np.random.default_rng(0).standard_normal(10_000)
    assert len(json.dumps(Measured.of_examples(values).to_record())) < 60_000


SHIFTED = """\
from arbench import SamplerSpec, hookimpl
from arbench.plugin.contracts import LikelihoodOutput, Sampler

PENALTY = 0.0
CALLS = 1


class Shifted(Sampler):
    def nll(self, model, x, budget):
        for _ in range(CALLS - 1):  # arbench counts these: the NFE it records grows
            model.log_prob(x)
        return LikelihoodOutput(-model.log_prob(x) + PENALTY, nfe=CALLS)


@hookimpl
def arbench_samplers():
    return [SamplerSpec(name="shifted", factory=Shifted, description="exact NLL plus PENALTY",
                        requires=frozenset({"causal-conditionals"}),
                        serves=frozenset({"density"}))]
"""


@pytest.mark.parametrize(("old", "new", "section"), [
    ("PENALTY = 0.0\n", "PENALTY = 0.5\n", "### Regressed"),  # worse NLL
    ("CALLS = 1\n", "CALLS = 2\n", "### NFE"),  # the same NLL for twice the network calls
])
def test_editing_a_plugin_reruns_its_cells_and_no_others(tmp_path, old, new, section):
    """The file of one sampler is edited in place between two runs of one command; the
    cells of the other sampler (same data, same model) are left alone, and compare
    judges the edited sampler's cells against the first run's."""
    site = make_dist(tmp_path / "site", "arbench-testkit",
                     {"testkit_plugins": (TESTS / "testkit_plugins.py").read_text(),
                      "shifted_plugin": SHIFTED},
                     {"testkit": "testkit_plugins", "shifted": "shifted_plugin"})
    command = ["run", "--task", "density", "--sampler", "shifted,toy", "--dataset", "tiny",
               "--seed", "0,1", "--name", "grid"]
    first = run_cli(command, cwd=tmp_path, extra_path=[site])
    assert first.returncode == 0, first.stderr
    before = {r.key: r for r in Store(tmp_path / "results/grid").records()}
    module = site / "shifted_plugin.py"
    module.write_text(module.read_text().replace(old, new))
    second = run_cli(command, cwd=tmp_path, extra_path=[site])
    assert second.returncode == 0, second.stderr
    assert "2 already finished, 2 to run" in second.stderr.replace("\n", " ")
    after = {r.key: r for r in Store(tmp_path / "results/grid").records()}
    assert after.keys() == before.keys()
    for key, record in after.items():
        changed = record.provenance.finished_at != before[key].provenance.finished_at or (
            record.provenance.code != before[key].provenance.code)
        assert changed == (record.identity.sampler == "shifted")
    compared = run_cli(["compare", str(tmp_path / "baseline"), "results/grid"], cwd=tmp_path,
                       extra_path=[site])
    assert compared.returncode == 2  # no baseline folder: cannot compare
    (tmp_path / "baseline/cells").mkdir(parents=True)
    for key, record in before.items():
        (tmp_path / "baseline/cells" / f"{key}.json").write_text(record.model_dump_json())
    compared = run_cli(["compare", "baseline", "results/grid"], cwd=tmp_path,
                       extra_path=[site])
    assert compared.returncode == 1, compared.stdout  # compared, and worse
    regressed = compared.stdout.split(section)[1]
    assert "density/tiny/uniform/shifted" in regressed and "/toy " not in regressed
