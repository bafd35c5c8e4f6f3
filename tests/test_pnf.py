"""The PnF sampler on targets whose answers are known in closed form."""

from __future__ import annotations

import math

import pytest
import torch

from arbench.errors import Incompatible
from arbench.plugin.conditions import Mixture, Observed
from arbench.plugin.contracts import Dataset, Model
from arbench_plugins.samplers.pnf import PnF

MEAN, STD = 0.3, 0.2


class Signal(Dataset):
    modality = "audio"
    shape = (4000,)
    num_levels = 256

    def load(self, split):
        raise NotImplementedError


class GaussianModel(Model):
    """i.i.d. N(MEAN, STD^2) per position; smoothing by sigma gives N(MEAN, STD^2 + sigma^2)."""

    def __init__(self, mean=MEAN):
        super().__init__()
        self.mean = mean

    @classmethod
    def load(cls, dataset, device, **params):
        return cls()

    @classmethod
    def train(cls, dataset, out, seed=0, **options):
        raise NotImplementedError

    def smoothed_log_prob(self, x, sigma):
        var = STD**2 + sigma**2
        return (-0.5 * (x - self.mean) ** 2 / var - 0.5 * math.log(2 * math.pi * var)).sum(-1)

    def quantize(self, x):
        return x


def sample(condition=None, budget=2000, dataset=None, model=None, **params):
    sampler = PnF(**{"levels": 5, "sigma_min": 0.01, "delta": 0.1, **params})
    generator = torch.Generator().manual_seed(0)
    n = 2 if condition is None else condition.values.shape[0]
    return sampler.sample(model or GaussianModel(), dataset or Signal(), n, budget, generator,
                          condition=condition)


def test_langevin_recovers_a_gaussian_targets_mean_and_variance():
    # One noise level: plain Langevin on the smoothed target N(MEAN, STD^2 + sigma^2).
    sigma = 0.05
    out = sample(budget=2000, levels=1, sigma_max=sigma, sigma_min=sigma)
    x = out.samples.flatten()
    assert x.mean().item() == pytest.approx(MEAN, abs=0.01)
    assert x.var().item() == pytest.approx(STD**2 + sigma**2, rel=0.05)
    assert out.nfe == 2000


def test_annealing_ends_near_the_target():
    out = sample(budget=2000)  # 5 levels from sigma 1 to 0.01, 400 steps each
    x = out.samples.flatten()
    assert x.mean().item() == pytest.approx(MEAN, abs=0.01)
    # Steps shrink with sigma^2, so the last levels barely move a target much wider
    # than sigma: the variance is that of the mid-schedule smoothed target, not less.
    assert STD**2 < x.var().item() < STD**2 + 0.1**2


def test_hard_constraints_hold_exactly_after_sampling():
    values = torch.linspace(-1, 1, 4000).repeat(2, 1)
    mask = torch.zeros(2, 4000, dtype=torch.bool)
    mask[:, ::8] = True
    out = sample(Observed(mask=mask, values=values), budget=100)
    assert torch.equal(out.samples[mask], values[mask])
    assert not torch.equal(out.samples[~mask], values[~mask])


class Pair(Dataset):
    modality = "audio"
    shape = (2, 500)
    num_levels = 256
    sources = ("a", "b")

    def load(self, split):
        raise NotImplementedError


class TwoPriors(GaussianModel):
    def prior(self, source):
        return GaussianModel(mean=0.5 if source == "a" else -0.2)


def test_separation_respects_the_mixture_and_counts_both_priors():
    mixture = torch.full((1, 500), 0.4)
    sampler = PnF(levels=5, sigma_min=0.01, delta=0.02)  # delta * weight * 2 < 2: stable
    out = sampler.sample(TwoPriors(), Pair(), 1, 1000, torch.Generator().manual_seed(0),
                         condition=Mixture(mixture=mixture, weight=15.0))
    assert out.nfe == 1000  # 5 levels x 100 steps x 2 priors
    residual = (out.samples.sum(dim=1) - mixture).abs().mean().item()
    assert residual < 0.02
    # With both priors Gaussian the posterior mean splits the residual by their variances.
    assert out.samples[:, 0].mean().item() == pytest.approx(0.5 + (0.4 - 0.3) / 2, abs=0.03)


def test_budget_too_small_is_incompatible_and_divergence_fails_loudly():
    with pytest.raises(Incompatible, match="budget 3"):
        sample(budget=3)
    with pytest.raises(FloatingPointError, match="lower pnf.delta"):
        sample(budget=50, delta=1e6)


def test_same_seed_same_samples():
    assert torch.equal(sample(budget=50).samples, sample(budget=50).samples)
