"""Speculative sampling's counts: acceptance and values per target call agree with closed
forms and with the calls arbench counts (the distribution itself: tests/test_exactness.py)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
import torch
from conftest import checked, model_spec, plan_cells, shipped

from arbench.errors import ContractViolation
from arbench.run.counting import counter_of, draft_model
from arbench.run.enumerable import TableData, TableModel, WindowTableModel
from arbench_plugins.samplers.drafts import ModelDraft
from arbench_plugins.samplers.speculative import Speculative, _window_cache
from arbench_plugins.samplers.speculative_jacobi import SpeculativeJacobi

DIMS_K = (8, 3, 200)  # dims, k, examples


def _with_draft(sampler: Speculative, draft: TableModel) -> Speculative:
    counted = ModelDraft(draft_model(draft), (draft.dims,))
    sampler._draft = lambda *args: counted  # type: ignore[method-assign]
    return sampler


def test_a_draft_equal_to_the_target_is_always_accepted_and_arbench_counts_its_calls():
    target = TableModel(6, 3, seed=1)
    sampler = checked(_with_draft(Speculative(k=2), TableModel(6, 3, seed=1)))
    out = sampler.sample(target, TableData(target), 500, None, torch.Generator().manual_seed(0))
    assert out.diagnostics["acceptance"] == 1.0 and out.nfe == 2
    counted = sampler.diagnostics["sample"]
    assert counted["mat"] == 3.0  # k + 1 values per target call, by arbench's count
    assert counted["draft_nfe"] == 4  # k draft calls per target call, counted by arbench


class Misreporting(Speculative):
    """Reports one draft call, whatever its draft made."""

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        out = super().sample(*args, **kwargs)
        return dataclasses.replace(out, diagnostics={**out.diagnostics, "draft_nfe": 1})


def test_a_sampler_that_misreports_its_draft_calls_violates_the_contract():
    target = TableModel(6, 3, seed=1)
    sampler = checked(_with_draft(Misreporting(k=2), TableModel(6, 3, seed=7)))
    with pytest.raises(ContractViolation, match=r"reported draft_nfe=1 but its drafts made \d+"):
        sampler.sample(target, TableData(target), 100, None, torch.Generator().manual_seed(0))


class Understating(Speculative):
    """Reports a tenth of its acceptance (or no k)."""

    def __init__(self, drop_k: bool = False, **params: Any) -> None:
        super().__init__(**params)
        self.drop_k = drop_k

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        out = super().sample(*args, **kwargs)
        diagnostics = {**out.diagnostics, "acceptance": out.diagnostics["acceptance"] / 10}
        if self.drop_k:
            del diagnostics["k"]
        return dataclasses.replace(out, diagnostics=diagnostics)


@pytest.mark.parametrize(("drop_k", "message"), [
    (False, r"reported acceptance=0\.\d+ with k=2, but finished 3 values per target call"),
    (True, "reported acceptance without k")])
def test_an_acceptance_that_mat_and_k_rule_out_violates_the_contract(drop_k, message):
    target = TableModel(6, 3, seed=1)
    sampler = checked(_with_draft(Understating(drop_k, k=2), TableModel(6, 3, seed=1)))
    with pytest.raises(ContractViolation, match=message):
        sampler.sample(target, TableData(target), 100, None, torch.Generator().manual_seed(0))


@pytest.mark.parametrize(("model", "width"), [(TableModel, DIMS_K[0]), (WindowTableModel, 0)])
def test_positions_evaluated_are_all_d_uncached_and_the_window_through_the_cache(model, width):
    """Each verification evaluates every position of its rows without a cache, and through
    the cache's window, every row at its own prefix, the values proposed + 1 (k + 1, fewer
    where fewer positions are left): positions per example = their sum over n."""
    dims, k, n = DIMS_K
    speculative = Speculative(k=k, draft_order=2)
    calls: list[list[tuple[int, int]]] = []  # per sample call: (rows, values proposed + 1)
    sample, propose = speculative.sample, speculative._propose

    def started(*args, **kwargs):
        calls.append([])
        return sample(*args, **kwargs)

    def recorded(draft, state, rows, k, generator):
        window = propose(draft, state, rows, k, generator)
        calls[-1].append((len(rows), window.values.shape[1] + 1))
        return window

    speculative.sample, speculative._propose = started, recorded  # type: ignore[method-assign]
    target, sampler = model(dims, 3, seed=1), checked(speculative)
    sampler.sample(target, TableData(TableModel(dims, 3, seed=2)), n, None, torch.Generator())
    meter = sampler.meter
    scored = next(steps for steps in calls if steps[0][0] == n)  # not the warm-up's few rows
    # uncached: the active rows, all D positions each; the cache: every row, the window
    evaluated = sum(rows * width if width else n * window for rows, window in scored)
    assert meter.positions == pytest.approx(evaluated / n)
    assert any(window < k + 1 for _, window in scored)  # the last positions: a shorter window
    # the draft saved target calls: uncached, per row; the cache computes every row until
    # the slowest is done
    assert meter.nfe < dims if width else meter.nfe <= dims


def test_acceptance_is_the_closed_form_alpha_of_one_value():
    """For one value, P(accept) = sum_x min(p(x), q(x)) (Leviathan et al., section 3.1)."""
    target, draft = TableModel(1, 5, seed=1), TableModel(1, 5, seed=7)
    p = target.logits(torch.zeros(1, 1, dtype=torch.long))[0, 0].softmax(-1)
    q = draft.logits(torch.zeros(1, 1, dtype=torch.long))[0, 0].softmax(-1)
    alpha = torch.minimum(p, q).sum().item()
    n = 20_000
    out = _with_draft(Speculative(k=1), draft).sample(
        target, TableData(target), n, None, torch.Generator().manual_seed(0))
    assert out.diagnostics["acceptance"] == pytest.approx(
        alpha, abs=4 * math.sqrt(alpha * (1 - alpha) / n))
    assert alpha < 0.9  # the test can fail: the two tables differ


@pytest.mark.parametrize("sampler", [Speculative(k=3, draft_order=2), SpeculativeJacobi()])
def test_values_per_target_call_are_the_calls_arbench_counts(sampler):
    target = TableModel(5, 3, seed=1)
    n, dims = 300, 5
    counter = counter_of(target)
    data = TableData(TableModel(5, 3, seed=2))  # its own model: enumerating it is no call
    with counter.counting():
        out = sampler.sample(target, data, n, None,
                             torch.Generator().manual_seed(0))
    assert out.diagnostics["mat"] == pytest.approx(n * dims / counter.evaluations)
    assert out.diagnostics["mat"] >= 1.0 and 0.0 < out.diagnostics["acceptance"] < 1.0


def test_the_diagnostics_of_several_sampler_calls_are_pooled_by_their_samples():
    from arbench.plugin.contracts import SampleOutput
    from arbench_plugins.tasks.unconditional import _pooled_diagnostics

    parts = [SampleOutput(torch.zeros(3, 2), 1, {"mat": 2.0, "window": 4, "tag": "a"}),
             SampleOutput(torch.zeros(1, 2), 1, {"mat": 6.0, "window": 4, "tag": "b"})]
    assert _pooled_diagnostics(parts) == {"mat": 3.0, "window": 4, "tag": "a"}


def test_a_cells_decoding_figures_pool_every_sample_call_not_the_last():
    """At batch 1 a task draws in many calls (the latency suite: 16); the record's MAT,
    draft calls and acceptance are the cell's, not its last call's."""
    target = TableModel(6, 3, seed=1)
    sampler = checked(Speculative(k=3, draft_order=2))
    data = TableData(TableModel(6, 3, seed=2))
    evaluations, drafts, acceptance = [], [], []
    for seed, n in enumerate([1, 1, 3]):
        out = sampler.sample(target, data, n, None, torch.Generator().manual_seed(seed))
        evaluations.append(sampler.meter.evaluations)  # this call's, as arbench counted
        drafts.append(sampler.meter.drafts)
        acceptance.append(out.diagnostics["acceptance"] * n)
    pooled = sampler.diagnostics["sample"]
    assert pooled["mat"] == pytest.approx(5 * 6 / sum(evaluations))
    assert pooled["mat"] != pytest.approx(3 * 6 / evaluations[-1])  # not the last call's
    assert pooled["draft_nfe"] == math.ceil(sum(drafts) / 5)
    assert pooled["acceptance"] == pytest.approx(sum(acceptance) / 5)
    assert len({round(a, 6) for a in acceptance}) > 1  # the calls differ: the test can fail
    assert [n for _, n in pooled["acceptance_calls"]] == [1, 1, 3]
    from arbench.results.speed import decoding_entries

    record = type("Record", (), {"diagnostics": {"sample": pooled}})()
    shown = decoding_entries(record)["acceptance"][0]  # type: ignore[arg-type]
    assert shown.value == pytest.approx(pooled["acceptance"])
    low, high = np.percentile(shown.replicates, [2.5, 97.5])
    assert low < shown.value < high and high - low > 0.01  # an interval over the calls


def test_verifying_with_the_targets_window_cache_gives_the_full_calls_samples():
    text, target, uncached = _small_text_transformer()
    assert _window_cache(target, torch.arange(64), 6) is not None
    assert _window_cache(uncached, torch.arange(64), 6) is None
    counter = counter_of(target)
    with counter.counting():
        cached = Speculative(k=3).sample(target, text, 6, None, torch.Generator().manual_seed(1))
    full = Speculative(k=3).sample(uncached, text, 6, None, torch.Generator().manual_seed(1))
    assert torch.equal(cached.samples, full.samples)
    assert cached.diagnostics["mat"] == pytest.approx(6 * 64 / counter.evaluations)
    assert counter.evaluations == 6 * cached.nfe  # every row at every call, cached or not


def test_the_ngram_drafts_proposals_follow_its_full_calls_one_counted_lookup_each():
    from arbench_plugins.samplers.drafts import NGramDraft

    data = TableData(TableModel(6, 3, seed=2))
    order = [5, 0, 3, 1, 4, 2]
    draft = draft_model(NGramDraft(data, order, 3, torch.device("cpu")))
    x, each = data.load("test")[:50], torch.arange(50)
    flat = torch.tensor(order)[each[:, None] % 4 + torch.arange(3)]  # 3 in a row, in order
    fixed = torch.zeros(50, 3, dtype=torch.bool)
    fixed[::7, 1] = True  # observed: kept, and the next proposal's context
    counter = counter_of(draft)
    with counter.counting():
        values, q = draft.propose(x, flat, fixed, torch.rand(50, 3, dtype=torch.float64,
                                                            generator=torch.Generator()))
    assert counter.evaluations == 150 and counter.positions == 150  # one per value proposed
    assert torch.equal(values[fixed], x.gather(1, flat)[fixed])
    proposed = x.scatter(1, flat, values)
    full = draft.logits(proposed).softmax(-1)[each[:, None], flat]
    torch.testing.assert_close(q[:, :3], full, atol=1e-6, rtol=0)  # given the values before
    assert not q[:, 3].any()  # none after the k-th value: verification draws from p there


def test_the_ngram_draft_carries_its_states_between_rounds_as_its_full_calls_give():
    """Through a sample call the draft carries each row's states from round to round (one
    transition per round, not a search of the context's suffixes); every round's q is
    still its full pass's given the values before, as rows finish at different rounds."""
    from arbench_plugins.samplers.ancestral import positions

    target, data = TableModel(10, 3, seed=1), TableData(TableModel(10, 3, seed=2))
    sampler = Speculative(k=3, draft_order=3)
    draft = sampler._draft(data, positions(target, data.dims), torch.device("cpu"))
    propose, rounds = draft.propose, []

    def recorded(x, flat, fixed, uniforms):
        values, q = propose(x, flat, fixed, uniforms)
        drafted = ~fixed if fixed is not None else torch.ones_like(flat, dtype=torch.bool)
        row = torch.arange(len(x))[:, None].expand_as(flat)[drafted]
        proposed = x.clone()
        proposed[row, flat[drafted]] = values[drafted]
        full = draft.logits(proposed).softmax(-1)[row, flat[drafted]]
        rounds.append(float((q[:, :-1][drafted] - full).abs().max()))
        return values, q

    draft.propose = recorded  # type: ignore[method-assign]
    sampler.sample(target, data, 6, None, torch.Generator().manual_seed(0))
    assert len(rounds) > 4 and max(rounds) < 1e-6


def _witten_bell(train: list[list[int]], context: tuple[int, ...], levels: int,
                 order: int) -> list[float]:
    """Witten-Bell's interpolated n-gram written out from its definition (Chen and Goodman,
    1998, eq. 16): a reference apart from the draft's tensor fit."""
    start = -1  # before the first value
    probability = [1.0 / levels] * levels
    for m in range(order):
        suffix = context[len(context) - m:] if m else ()
        follows = [row[i] for row in train for i in range(len(row))
                   if tuple(([start] * (order - 1) + row)[i + order - 1 - m:i + order - 1])
                   == suffix]
        if not follows:
            break
        seen = len(follows) / (len(follows) + len(set(follows)))
        probability = [seen * follows.count(v) / len(follows) + (1 - seen) * probability[v]
                       for v in range(levels)]
    return probability


def test_the_ngram_draft_is_witten_bells_interpolation_of_its_train_counts():
    from arbench_plugins.samplers.drafts import NGramDraft

    data = TableData(TableModel(5, 3, seed=4), size=60)
    order, positions = 3, [4, 1, 0, 3, 2]
    draft = NGramDraft(data, positions, order, torch.device("cpu"))
    train = data.load("train")[:, positions].tolist()
    x = data.load("test")[:20]
    got = draft.logits(x).double().exp()[:, positions]
    for row, probabilities in zip(x[:, positions].tolist(), got, strict=True):
        padded = [-1] * (order - 1) + row
        for step, p in enumerate(probabilities):
            context = tuple(padded[step:step + order - 1])
            want = _witten_bell(train, context, 3, order)
            torch.testing.assert_close(p, torch.tensor(want, dtype=torch.float64),
                                       atol=1e-6, rtol=0)


def test_a_model_draft_keys_the_cell_by_its_checkpoint_and_code():
    """A record is current only for the draft it used: its checkpoint and code are keyed."""
    from arbench.run.grid import GridSpec

    grid = GridSpec(tasks=["unconditional"], samplers=["speculative"], datasets=["digits"],
                    models=["transformer"], baselines=False,
                    sweeps={"speculative": {"draft": ["ngram", "pixelcnn"]}})
    found = {cell.params["speculative"]["draft"]: cell.inputs for cell in plan_cells([grid])}
    ngram, pixelcnn = found["ngram"], found["pixelcnn"]
    assert "model:pixelcnn" in pixelcnn.code and "model:pixelcnn" not in ngram.code
    assert pixelcnn.checkpoint_sha256 == ngram.checkpoint_sha256 + "+pixelcnn:" + \
        model_spec("pixelcnn").checkpoint_sha256("digits", {})


def test_a_model_draft_with_a_window_cache_costs_one_cached_step_per_value():
    """Through its cache, a model draft computes one position per proposed value (the
    first of a round also the position before it, whose input is final only now), not a
    full pass each; and its proposals are the full pass's (the same net as the target:
    every value is accepted)."""
    from arbench_plugins.datasets.text import Text

    text = Text()
    text.name = "text"
    target, counted = shipped("transformer", text), draft_model(shipped("transformer", text))
    draft, rounds = ModelDraft(counted, text.shape), []
    propose = draft.propose

    def recorded(x, flat, fixed, uniforms):
        rounds.append(flat.shape)
        return propose(x, flat, fixed, uniforms)

    draft.propose = recorded  # type: ignore[method-assign]
    sampler = Speculative(k=3)
    sampler._draft = lambda *args: draft  # type: ignore[method-assign]
    counter = counter_of(counted)
    with counter.counting():
        out = sampler.sample(target, text, 2, None, torch.Generator().manual_seed(0))
    assert draft.cached and all(rows == 2 for rows, _ in rounds)  # every row, as the target
    values = sum(rows * k for rows, k in rounds)
    assert counter.evaluations == values  # one draft call per value proposed
    assert counter.positions == values + 2 * len(rounds)  # + the position before, per round
    assert out.diagnostics["acceptance"] > 0.99 and out.nfe <= 64 / 4 + 1


def test_the_lookup_draft_proposes_what_followed_the_rows_last_values():
    from arbench_plugins.samplers.drafts import followers

    assert followers([1, 2, 3, 4, 1, 2], 3, 2) == [3, 4, 1]  # the latest "1 2" before
    assert followers([1, 2, 3, 1, 2], 4, 2) == [3, 1, 2]  # what there is, up to k
    assert followers([7, 1, 9, 7], 2, 2) == [1, 9]  # "9 7" never occurred: "7" did
    assert followers([5, 6], 2, 2) == [] and followers([], 2, 2) == []  # none: no draft


def test_without_a_match_the_lookup_draft_proposes_nothing_and_the_round_is_a_plain_step():
    from arbench.run.counting import counter_of

    target = TableModel(6, 3, seed=1)
    data = TableData(target)
    sampler = Speculative(draft="lookup", k=3)
    counter = counter_of(target)
    with counter.counting():
        out = sampler.sample(target, data, 1, None, torch.Generator().manual_seed(0))
    assert out.nfe <= 6 and counter.evaluations == out.nfe
    # the first value has no history: that round drafted nothing and drew one value
    draft = sampler._drafts[("lookup", data.name, "cpu", "None")]
    assert draft.propose(torch.zeros(1, 6, dtype=torch.long), torch.arange(3)[None], None,
                         torch.rand(1, 3))[0].shape == (1, 0)


def test_speculative_sampling_with_the_lookup_draft_is_certified():
    from arbench.run.certify import certify_sampler

    verdicts = certify_sampler(Speculative(draft="lookup", k=3), 20_000)
    assert all(v.passed for v in verdicts if v.passed is not None), verdicts
    assert sum(v.passed is True for v in verdicts) >= 3


def test_a_prompt_is_the_first_calls_prefix_through_the_window_cache_as_through_full_calls():
    """Observed values before the first drawn one (a prompt) are not drafted: the first
    call computes them with its window, and the samples are the uncached calls'."""
    from arbench import Observed
    text, target, uncached = _small_text_transformer()
    prompt = text.load("test")[:1]
    mask = torch.zeros(1, 64, dtype=torch.bool)
    mask[:, :40] = True
    condition = Observed(mask, text.continuous(prompt))
    runs = [Speculative(k=3, draft="lookup").sample(model, text, 1, None, torch.Generator()
                                                     .manual_seed(2), condition=condition)
            for model in (target, uncached)]
    assert torch.equal(runs[0].samples, runs[1].samples)
    assert torch.equal(runs[0].samples[:, :40], condition.values[:, :40])
    assert runs[0].nfe <= 24  # the 24 values after the prompt, none of the prompt's 40


def _small_text_transformer() -> tuple[Any, Any, Any]:
    """The text, a small random text transformer, and the same without its cache."""
    from arbench_plugins.datasets.text import Text
    from arbench_plugins.models.transformer.model import Transformer
    from arbench_plugins.models.transformer.net import CausalTransformer

    torch.manual_seed(0)
    text = Text()
    text.name = "text"
    target = Transformer(CausalTransformer(27, 64, width=32, layers=2, heads=4).eval(), text)
    uncached = Transformer(target.net, text)
    uncached.incremental = lambda n: None  # type: ignore[method-assign]
    return text, target, uncached
