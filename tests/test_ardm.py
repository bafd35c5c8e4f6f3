"""ARDM: the budget split, the likelihood estimators, conditioning and upscale digits."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from arbench.errors import Incompatible
from arbench.plugin.conditions import Observed
from arbench.plugin.contracts import Dataset
from arbench_plugins.models.ardm.model import (
    ARDM,
    Digits,
    OrderAgnosticNet,
    elbo_nats,
    loss_components,
    stage_count,
)
from arbench_plugins.samplers.ardm import (
    ARDMSampler,
    group_cost,
    naive_groups,
    optimal_groups,
    to_levels,
)


class Small(Dataset):
    shape = (5,)
    num_levels = 6

    def load(self, split: str) -> torch.Tensor:
        return torch.randint(0, 6, (40, 5), generator=torch.Generator().manual_seed(1))


def small_model(branch: int | None = None, seed: int = 0) -> ARDM:
    """An untrained (random) network is still a valid order-agnostic model."""
    torch.manual_seed(seed)
    net = OrderAgnosticNet(num_levels=6, dims=5, branch=branch or 6, width=16, layers=1,
                           heads=2).eval()
    model = ARDM(net, Small())
    x = Small().load("train")
    net.loss_components.copy_(loss_components(net, model.digits, x, repeats=4, seed=0))
    return model


def compositions(total: int, parts: int):
    for cuts in itertools.combinations(range(1, total), parts - 1):
        bounds = (0, *cuts, total)
        yield [b - a for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize("segment", [None, 3])
def test_dp_split_is_optimal_against_brute_force(segment):
    rng = np.random.default_rng(0)
    for total in ([3, 4, 6, 7] if segment is None else [6, 9]):
        losses = np.sort(rng.uniform(0.1, 3.0, total))[::-1] + rng.uniform(0, 0.3, total)
        for budget in range(total // (segment or total), total + 1):
            sizes = optimal_groups(losses, budget, segment)
            assert sum(sizes) == total and len(sizes) == budget
            best = min(group_cost(losses, split, segment or total)
                       for split in compositions(total, budget))
            assert group_cost(losses, sizes, segment or total) == pytest.approx(best)


def test_naive_split_and_too_small_budgets():
    assert naive_groups(10, 3) == [4, 3, 3]
    assert naive_groups(6, 4, segment=3) == [2, 1, 2, 1]
    with pytest.raises(Incompatible, match="2 stages"):
        optimal_groups(np.ones(6), 1, segment=3)


def exact_order_averaged_nll(model: ARDM, x: torch.Tensor) -> torch.Tensor:
    """E over all D! orders of sum_t -log p(x_sigma(t) | x_sigma(<t)), computed exactly."""
    dims, total = x.shape[1], torch.zeros(x.shape[0], dtype=torch.float64)
    orders = list(itertools.permutations(range(dims)))
    with torch.no_grad():
        for order in orders:
            known = torch.zeros_like(x, dtype=torch.bool)
            for position in order:
                log_p = model.step_log_probs(x.where(known, 0), known, 1)
                total -= log_p[torch.arange(len(x)), position, x[:, position]].double()
                known[:, position] = True
    return total / len(orders)


def test_one_position_per_step_elbo_matches_the_exact_order_average():
    model = small_model()
    x = Small().load("test")[:6]
    exact = exact_order_averaged_nll(model, x).mean().item()
    torch.manual_seed(0)
    repeats = 60
    sequential = torch.stack([ARDMSampler().nll(model, x, None).nll_nats
                              for _ in range(repeats)])  # D calls each, random orders
    mean, error = sequential.mean().item(), sequential.mean(1).std().item() / math.sqrt(repeats)
    assert abs(mean - exact) < 4 * error + 1e-9
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # the training objective: random step t, weighted D / (D - t + 1)
        sampled = torch.stack([elbo_nats(model.net, model.digits, x, generator)
                               for _ in range(2000)])
    error = sampled.mean(1).std().item() / math.sqrt(2000)
    assert abs(sampled.mean().item() - exact) < 4 * error


def test_loss_components_sum_to_the_elbo():
    model = small_model()
    x = Small().load("train")
    exact = exact_order_averaged_nll(model, x).mean().item()
    assert model.loss_components.sum().item() == pytest.approx(exact, rel=0.05)


def test_fewer_steps_cost_likelihood_and_dp_is_never_worse_in_expectation():
    model = small_model()
    losses = model.loss_components.reshape(-1).double().numpy()
    for budget in range(1, 6):
        dp = group_cost(losses, optimal_groups(losses, budget), 5)
        naive = group_cost(losses, naive_groups(5, budget), 5)
        assert dp <= naive + 1e-12
    assert ARDMSampler().nll(model, Small().load("test"), 2).nfe == 2


@pytest.mark.parametrize("branch", [None, 2])
def test_observed_positions_never_change(branch):
    model = small_model(branch)
    truth = torch.linspace(-1, 1, 6)[Small().load("test")[:8]]
    mask = torch.tensor([True, False, True, False, False]).expand(8, 5)
    generator = torch.Generator().manual_seed(0)
    out = ARDMSampler().sample(model, Small(), 8, 4 * model.stages, generator,
                               condition=Observed(mask=mask, values=truth))
    assert torch.equal(out.samples[mask], truth[mask])
    assert out.nfe <= 4 * model.stages
    levels = to_levels(out.samples, 6)
    assert ((levels >= 0) & (levels < 6)).all()


@pytest.mark.parametrize(("levels", "branch"), [(17, 2), (27, 3), (256, 4), (6, 6)])
def test_upscale_digits_reconstruct_every_value_exactly(levels, branch):
    stages = stage_count(levels, branch)
    assert branch ** stages >= levels > branch ** (stages - 1) or stages == 1
    digits = Digits(levels, branch, stages, torch.device("cpu"))
    x = torch.arange(levels)
    rebuilt = sum(digits.digit(x, s) * digits.unit(s) for s in range(1, stages + 1))
    assert torch.equal(rebuilt, x)
    assert torch.equal(digits.coarse(x, stages), x) and not digits.coarse(x, 0).any()
    for stage in range(1, stages + 1):  # each stage refines the one before
        assert torch.equal(digits.coarse(x, stage - 1) + digits.digit(x, stage) *
                           digits.unit(stage), digits.coarse(x, stage))


def test_upscale_digit_probabilities_are_normalised_and_consistent():
    model = small_model(branch=2)
    x = Small().load("test")[:4]
    for stage in range(1, model.stages + 1):
        known = torch.zeros_like(x, dtype=torch.bool)
        log_p = model.step_log_probs(model.digits.coarse(x, stage - 1), known, stage)
        assert torch.allclose(log_p.exp().sum(-1), torch.ones(4, 5), atol=1e-5)
        # digits that would leave the value range 0..5 get no probability
        impossible = model.digits.coarse(x, stage - 1)[..., None] + torch.arange(2) * \
            model.digits.unit(stage) >= 6
        assert (log_p.exp()[impossible] == 0).all()


def test_upscale_training_step_has_finite_gradients():
    model = small_model(branch=2)
    x = Small().load("train")
    generator = torch.Generator().manual_seed(0)
    for _ in range(model.stages * 3):  # every stage is drawn in a few steps
        model.net.zero_grad()
        elbo_nats(model.net, model.digits, x, generator).mean().backward()
        grads = [p.grad for p in model.net.parameters() if p.grad is not None]
        assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.slow
def test_shipped_checkpoints_score_digits_and_text_through_the_cli(tmp_path):
    """The NLL vs steps table from the shipped ARDMs: DP and naive rows, one column per NFE."""
    from conftest import run_cli

    result = run_cli(["run", "--task", "density", "--sampler", "ardm", "--dataset",
                      "digits,text", "--budget", "64,8", "--set", "density.max_examples=48",
                      "--timing-repeats", "0"],
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = result.stdout.split("### all cells")[0]
    assert "NFE 8" in table and "NFE 64" in table
    for row in ("| digits    | oa-ardm | ardm      | ardm.policy=dp",
                "| text      | oa-ardm | ardm      | ardm.policy=naive"):
        assert row in table
    from arbench.results.store import Store

    records = list(Store(tmp_path / "results/density-ardm-digits+text").records())
    nll = {(r.identity.dataset, r.identity.budget, r.identity.variant): r.metrics["nll_bpd"].value
           for r in records}
    assert len(nll) == 8 and all(r.status == "ok" for r in records)
    for dataset, ceiling in (("digits", 2.3), ("text", 3.0)):  # uniform: 4.09 and 4.75
        full = nll[(dataset, 64, "ardm.policy=dp")]
        assert full < ceiling
        assert nll[(dataset, 8, "ardm.policy=dp")] > full  # fewer steps cost bits
