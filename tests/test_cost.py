"""Cost measured by arbench: network calls counted through the model, the sampler's own time,
and speed-ups against the reference of the same run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import plan_cells

from arbench.plugin.capabilities import Logits
from arbench.plugin.contracts import Model
from arbench.report.build import TaskViews, build_report
from arbench.results.record import Record
from arbench.results.speed import cost_rows, paired_speedup, speedup, timing_rows
from arbench.results.store import Store
from arbench.run.cost import Call, CostMeter
from arbench.run.counting import counter_of
from arbench.run.grid import GridSpec
from arbench.run.runner import Runner


class Counted(Logits, Model):
    """A 3-value, 2-level causal model with a torch module, a cache and a sub-model."""

    provides = frozenset({"causal-conditionals", "causal-logits"})
    shape = (3,)

    @classmethod
    def load(cls, dataset, device, **params):
        return cls()

    @classmethod
    def train(cls, dataset, out, seed=0, **options):
        raise NotImplementedError

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(3, 6)

    def logits(self, x):
        return self.net(x.float()).view(len(x), 3, 2)

    def incremental(self, n):
        model = self

        class Cache:
            def logits(self, previous):
                return model.logits(torch.zeros(n, 3))[:, 0]
        return Cache()

    def prior(self, source):
        return self.source_model

    def helper(self, x):  # a non-capability method that runs the network twice
        return self.net(self.net(x.float()).view(len(x), -1)[:, :3])


def counted(model, n, call):
    counter = counter_of(model)
    with counter.counting():
        call()
    return counter.per_example(n)


def test_one_batched_call_counts_one_and_nested_calls_count_once():
    model, x = Counted(), torch.zeros(8, 3, dtype=torch.long)
    assert counted(model, 8, lambda: model.logits(x)) == 1
    assert counted(model, 8, lambda: model.log_prob(x)) == 1  # log_prob -> logits -> net
    assert counted(model, 8, lambda: [model.sample_value(x, i, torch.Generator())
                                      for i in range(3)]) == 3


def test_calls_on_part_of_the_batch_count_for_the_examples_they_carry():
    model, x = Counted(), torch.zeros(10, 3, dtype=torch.long)
    # two chunks of 5: one call per example; a call on 5 of 10 adds half a call each
    assert counted(model, 10, lambda: [model.logits(c) for c in x.split(5)]) == 1
    assert counted(model, 10, lambda: (model.logits(x), model.logits(x[:5]))) == 2  # 1.5 up


def test_the_torch_modules_count_when_a_sampler_reaches_them_directly():
    model, x = Counted(), torch.zeros(4, 3)
    assert counted(model, 4, lambda: model.net(x)) == 1
    assert counted(model, 4, lambda: model.helper(x)) == 2
    assert counted(model, 4, lambda: type(model).logits(model, x)) == 1  # the class function


def test_an_incremental_step_counts_one_and_a_sub_model_counts_into_its_parent():
    model = Counted()
    model.source_model = Counted()
    cache = model.incremental(4)
    assert counted(model, 4, lambda: [cache.logits(None) for _ in range(5)]) == 5
    assert counted(model, 4, lambda: model.prior("a").logits(torch.zeros(4, 3))) == 1


def test_nothing_is_counted_outside_a_sampler_call():
    model = Counted()
    counter = counter_of(model)
    model.logits(torch.zeros(2, 3))
    assert counter.evaluations == 0


def _run(registry, tmp_path, sampler, task="unconditional", repeats=3, **params):
    grid = GridSpec(tasks=[task], samplers=[sampler], datasets=["digits"], models=["pixelcnn"],
                    params={"unconditional": {"n_samples": 16, "quality": "none"},
                            "density": {"max_examples": 16},
                            **params}, baselines=False)
    (cell,) = plan_cells([grid], registry)
    runner = Runner(registry, Store(tmp_path / f"{sampler}-{repeats}"), "cpu", "run", repeats)
    return runner.run_one(cell)


@pytest.mark.parametrize(("sampler", "task", "nfe"), [
    ("ancestral", "unconditional", 64), ("ancestral", "density", 1), ("jacobi", "density", 1)])
def test_the_built_in_samplers_count_what_the_convention_says(test_registry, tmp_path, sampler,
                                                               task, nfe):
    record = _run(test_registry, tmp_path, sampler, task)
    assert record.status == "ok", record.reason
    assert record.cost.nfe == record.cost.nfe_reported == nfe  # the sampler's own figure beside


def test_jacobi_counts_its_calls_per_example(test_registry, tmp_path):
    record = _run(test_registry, tmp_path, "jacobi")
    calls = record.diagnostics["sample"]["calls_per_example"]
    assert record.cost.nfe == int(np.ceil(np.mean(calls) - 1e-9))
    assert record.cost.nfe <= record.cost.nfe_reported == max(calls)


def test_timing_repeats_and_the_warm_up_leave_the_samples_and_metrics_unchanged(
        test_registry, tmp_path):
    once, thrice = (_run(test_registry, tmp_path, "ancestral", repeats=r) for r in (1, 3))
    assert len(once.cost.sampler_timings_s) == 1 and len(thrice.cost.sampler_timings_s) == 3
    assert once.metrics == thrice.metrics
    assert thrice.cost.sampler_time_s == pytest.approx(np.mean(thrice.cost.sampler_timings_s))
    assert thrice.cost.examples_per_s == pytest.approx(16 / thrice.cost.sampler_time_s)
    assert 0 < thrice.cost.sampler_time_s < thrice.cost.wall_time_s
    assert thrice.cost.reference_timings_s is None  # the reference is not timed against itself


def test_speedup_is_the_ratio_of_mean_times_with_a_bootstrap_interval():
    found = speedup(np.array([2.0, 2.2, 1.8]), np.array([0.5, 0.55, 0.45]))
    assert found.value == pytest.approx(4.0)
    low, high = np.percentile(found.replicates, [2.5, 97.5])
    assert low < 4.0 < high and high - low < 2
    assert speedup(np.array([2.0]), np.array([1.0])).replicates is None  # one timing each


def test_the_reference_is_timed_in_turn_with_the_sampler_and_paired_round_by_round():
    log: list[str] = []
    meter = CostMeter("s", "cpu", set(), repeats=4)
    meter.measure(None, "key", Call(run=lambda: log.append("scored"),
                                    replay=lambda: log.append("own"), head=None, n=1,
                                    reference=lambda: log.append("reference")))
    # the reference's warm-up, then rounds: own first in even ones, the reference in odd
    assert log == ["scored", "reference", "own", "reference", "reference", "own", "own",
                   "reference", "reference", "own"]
    cost = meter.record()
    assert len(cost["reference_timings_s"]) == len(cost["sampler_timings_s"]) == 4
    found = paired_speedup(np.array([2.0, 4.0, 2.0, 4.0]), np.array([1.0, 1.0, 2.0, 2.0]))
    assert found.value == pytest.approx((2 + 4 + 1 + 2) / 4)  # the mean of each round's ratio
    low, high = np.percentile(found.replicates, [2.5, 97.5])
    assert 1.0 <= low < found.value < high <= 4.0
    assert paired_speedup(np.array([2.0]), np.array([1.0])).replicates is None


def test_a_paired_record_is_its_own_reference_and_a_runner_cell_keeps_the_pairs(
        test_registry, tmp_path):
    paired = _timed("b", "jacobi", [1.0, 2.0], reference_timings_s=[3.0, 2.0])
    rows = timing_rows([_timed("a", "ancestral", [100.0]), paired], {
        "unconditional": "ancestral"})
    assert rows["b"]["speedup"][0].value == pytest.approx(2.0)  # not 100 / 1.5
    record = _run(test_registry, tmp_path, "jacobi", repeats=2)
    assert len(record.cost.reference_timings_s) == 2  # ancestral's, on its inputs
    untimed = CostMeter("s", "cpu", set(), repeats=0)
    untimed.measure(None, "key", Call(run=lambda: None, replay=lambda: None, head=None, n=1,
                                      reference=lambda: None))
    assert untimed.record()["reference_timings_s"] is None


def _timed(key, sampler, seconds, model="m", seed=0, task="unconditional", **fields):
    return Record.model_validate({
        "key": key, "status": "ok", "task": task, "dataset": "d", "seed": seed, "nfe": 1,
        "sampler": sampler, "model": model, "params": {}, "swept": {},
        "metrics": {"x": {"value": 1.0, "direction": "lower", "unit": ""}},
        "sampler_timings_s": seconds, **fields})  # fields may replace params


def test_the_reference_is_on_the_same_data_and_seed_same_model_first():
    records = [_timed("a", "ancestral", [4.0]), _timed("b", "jacobi", [1.0]),
               _timed("c", "ancestral", [8.0], model="other"),
               _timed("d", "jacobi", [2.0], seed=1),  # no reference at seed 1
               _timed("e", "pnf", [1.0], model="smooth", task="superres"),
               _timed("f", "spline", [0.01], model=None, task="superres"),
               _timed("g", "ancestral", [3.0], params={"m": {"mixtures": 6}})]
    rows = timing_rows(records, {"unconditional": "ancestral", "superres": "spline"})
    assert rows["b"]["speedup"][0].value == pytest.approx(4.0)
    assert rows["a"]["speedup"][0].value == pytest.approx(1.0)
    assert "speedup" not in rows["d"]
    assert rows["e"]["speedup"][0].value == pytest.approx(0.01)  # model-free reference
    assert rows["b"]["sampler_s"][0].value == pytest.approx(1.0)
    assert rows["g"]["speedup"][0].value == pytest.approx(1.0)  # its own model variant


def test_the_cost_table_shows_the_exactness_claim_and_a_decoding_samplers_acceptance():
    decoding = {"sample": {"draft_nfe": 40, "acceptance": 0.35, "mat": 2.5, "other": 1}}
    records = [_timed("a", "ancestral", [4.0], exactness="exact"),
               _timed("b", "speculative", [2.0], exactness="distribution",
                      diagnostics=decoding)]
    rows = cost_rows(records, {"unconditional": "ancestral"})
    assert set(rows["a"]) == {"sampler_s", "speedup"}
    assert rows["b"]["mat"][0].value == 2.5 and rows["b"]["acceptance"][1] == "higher"
    assert rows["b"]["draft_nfe"][1] == "lower" and "other" not in rows["b"]
    views = TaskViews(references={"unconditional": "ancestral"})
    table = next(t for t in build_report(records, views).tables if t.task.endswith("cost")).frame
    speculative = table[table["sampler"] == "speculative"].iloc[0]
    assert speculative["exactness"] == "distribution (not certified)"  # no certificate
    assert speculative["mat (values per target call) ↑"].mean == 2.5
    assert speculative["speedup (x, not gated) ↑"].mean == pytest.approx(2.0)
    assert table[table["sampler"] == "ancestral"]["acceptance (share of draft values kept) ↑"] \
        .iloc[0] is None


def test_the_timed_replays_clock_the_target_and_draft_calls_in_reference_steps():
    """At batch 1 the timed replays clock the target's and the draft's outermost calls and
    the reference's: a target call's and a drafted value's seconds in its steps (its
    seconds per call); a call on more examples gives none (rows finish apart)."""
    from arbench.run.enumerable import TableData, TableModel, WindowTableModel
    from arbench_plugins.samplers.ancestral import Ancestral
    from arbench_plugins.samplers.speculative import Speculative

    target, data = WindowTableModel(6, 3, seed=1), TableData(TableModel(6, 3, seed=2))

    def call(sampler, n=1):
        return lambda: sampler.sample(target, data, n, None, torch.Generator().manual_seed(0))

    speculative, rounds = Speculative(k=3), 4
    meter = CostMeter("speculative", "cpu", set(), repeats=rounds)
    out = meter.measure(target, "key", Call(run=call(speculative), replay=call(speculative),
                                            head=None, n=1, reference=call(Ancestral())))
    cost = meter.record()
    (calls, seconds), (drafted, drafting), (steps, _) = (
        (clock.evaluations, clock.seconds) for clock in meter.clocks.values())
    assert calls == rounds * out.nfe and steps == rounds * 6  # ancestral: a call per value
    assert drafted == rounds * meter.draft_nfe  # the n-gram: one evaluation per value
    assert 0 < seconds < sum(cost["sampler_timings_s"])
    step = sum(cost["reference_timings_s"]) / steps
    assert cost["call_steps"] == pytest.approx(seconds / calls / step)
    assert cost["draft_steps"] == pytest.approx(drafting / drafted / step)
    batched = CostMeter("speculative", "cpu", set(), repeats=2)
    batched.measure(target, "key", Call(run=call(speculative, 2), replay=call(speculative, 2),
                                        head=None, n=2, reference=call(Ancestral(), 2)))
    assert batched.record()["call_steps"] is None and batched.record()["draft_steps"] is None


def test_the_bound_is_leviathans_from_the_measured_steps_and_acceptance():
    def record(key, acceptance, **cost):
        return _timed(key, "speculative", [1.0, 1.0], reference_timings_s=[2.0, 2.4],
                      diagnostics={"sample": {"acceptance": acceptance, "k": 4}}, **cost)

    rows = cost_rows([record("a", 0.8, draft_steps=0.05, call_steps=1.2),
                      record("b", 1.0, draft_steps=0.05, call_steps=1.2),
                      record("c", 0.8, call_steps=1.2)], {"unconditional": "ancestral"})
    bound = (1 - 0.8 ** 5) / ((1 - 0.8) * (4 * 0.05 + 1.2))  # 2.40
    assert rows["a"]["bound"][0].value == pytest.approx(bound)
    assert rows["a"]["bound_share"][0].value == pytest.approx(2.2 / bound)
    assert rows["b"]["bound"][0].value == pytest.approx(5 / 1.4)  # every value kept
    assert rows["c"]["call_steps"][0].value == 1.2 and "bound" not in rows["c"]  # no draft
