"""A sampler that breaks its contract fails its cell, named, and is never scored."""

from __future__ import annotations

import pytest
from conftest import plan_cells

from arbench.results.store import Store
from arbench.run.grid import GridSpec
from arbench.run.runner import Runner


@pytest.mark.parametrize(("task", "mode", "message"), [
    ("unconditional", "half", "sampler 'toy' returned 4 samples, 8 were asked for"),
    ("unconditional", "wrong-shape", "returned samples of shape (3,); dataset 'tiny' examples "
                                     "have shape (4,)"),
    ("unconditional", "nan-samples", "sampler 'toy' returned NaN or infinite samples"),
    ("unconditional", "out-of-range", "returned levels 3..5; dataset 'tiny' has levels 0..2"),
    ("unconditional", "over-budget", "used 40 network calls, more than its budget of 8"),
    ("density", "short-nll", "returned an NLL of shape (10,) for 20 examples"),
    ("density", "nan", "sampler 'toy' returned a NaN or -inf NLL"),
    ("density", "bad-diagnostics", "returned diagnostics JSON cannot write"),
    ("unconditional", "float64", "returned torch.float64 samples; return float32 values"),
    ("unconditional", "meta", "returned samples on the meta device"),
    ("density", "negative-nll", "on discrete data: a probability above 1"),
    # arbench counts the calls: a sampler that reports fewer than it makes fails
    ("unconditional", "hidden-calls", "reported nfe=4 but made 40 network calls per example"),
    ("unconditional", "direct-net", "reported nfe=4 but made 40 network calls per example"),
    ("density", "hidden-calls", "reported nfe=4 but made 41 network calls per example"),
])
def test_a_broken_contract_fails_the_cell_and_names_the_sampler(test_registry, tmp_path, task,
                                                                mode, message):
    grid = GridSpec(tasks=[task], samplers=["toy"], datasets=["tiny"], budgets=[8],
                    params={"toy": {"mode": mode}, "unconditional": {"n_samples": 8}},
                    baselines=False)
    (cell,) = plan_cells([grid], test_registry)
    record = Runner(test_registry, Store(tmp_path / "run"), "cpu", "run").run_one(cell)
    assert record.status == "failed"
    assert record.reason.startswith("ContractViolation: ")
    assert message in record.reason
    assert record.metrics == {}


def test_diagnostics_are_kept_in_the_record(test_registry, tmp_path):
    grid = GridSpec(tasks=["density"], samplers=["toy"], datasets=["tiny"], baselines=False)
    (cell,) = plan_cells([grid], test_registry)
    record = Runner(test_registry, Store(tmp_path / "run"), "cpu", "run").run_one(cell)
    assert record.status == "ok"
    assert record.diagnostics == {"nll": {"scored": 20}}


def test_zero_probability_is_an_infinite_nll_not_a_violation():
    """The checkerboard's true density scores grid points off its squares at +inf."""
    import torch

    from arbench.plugin.contracts import LikelihoodOutput
    from arbench.run.checks import check_likelihood

    check_likelihood("true", LikelihoodOutput(torch.tensor([1.0, torch.inf]), nfe=2), 2)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_a_finite_value_no_record_can_store_fails_the_cell_saying_why(test_registry, tmp_path):
    """NLLs finite in float64 but beyond float32's range: the record is validated before it
    is stored, and the cell fails naming the field instead of writing a damaged file."""
    grid = GridSpec(tasks=["density"], samplers=["toy"], datasets=["tiny"],
                    params={"toy": {"mode": "huge-nll"}}, baselines=False)
    (cell,) = plan_cells([grid], test_registry)
    store = Store(tmp_path / "run")
    record = Runner(test_registry, store, "cpu", "run").run_one(cell)
    assert record.status == "failed", record
    assert record.reason.startswith("the cell's record would be unreadable (metrics.nll_bpd.")
    assert [each.key for each in store.records()] == [cell.key] and not store.damaged
