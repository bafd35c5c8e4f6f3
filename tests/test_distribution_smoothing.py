"""Distribution smoothing: the mixture of logistics, MADE, the ELBO and single-step denoising,
checked against closed forms."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from arbench.errors import Incompatible
from arbench.plugin.conditions import Noisy
from arbench_plugins.models.distribution_smoothing.pair import SmoothedPair
from arbench_plugins.models.made.net import MADE, mol_log_prob, mol_sample
from arbench_plugins.samplers.distribution_smoothing import SingleStep, TwoStep, denoise_single_step


def normal_log_prob(x: torch.Tensor, mean: float, var: float) -> torch.Tensor:
    return -0.5 * (x - mean) ** 2 / var - 0.5 * math.log(2 * math.pi * var)


class GaussianPair(SmoothedPair):
    """1-D pair in closed form: p(x~) = N(0, a2), p(x | x~) = N(c x~, b2).

    Its marginal is p(x) = N(0, c^2 a2 + b2). With a2 = s2 + sigma^2, c = s2 / a2 and
    b2 = s2 sigma^2 / a2 it is the exact smoothing of data N(0, s2), whose posterior
    p(x~ | x) is q(x~ | x) = N(x, sigma^2), so the ELBO is tight.
    """

    def __init__(self, sigma: float, a2: float, c: float, b2: float) -> None:
        super().__init__()
        self.sigma, self.a2, self.c, self.b2 = sigma, a2, c, b2

    @classmethod
    def exact(cls, s2: float, sigma: float) -> GaussianPair:
        a2 = s2 + sigma**2
        return cls(sigma, a2, s2 / a2, s2 * sigma**2 / a2)

    @property
    def dims(self) -> int:
        return 1

    def marginal_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return normal_log_prob(x, 0.0, self.c**2 * self.a2 + self.b2).sum(1)

    def noisy_log_prob(self, noisy: torch.Tensor) -> torch.Tensor:
        return normal_log_prob(noisy, 0.0, self.a2).sum(1)

    def clean_log_prob(self, x: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
        return normal_log_prob(x - self.c * noisy, 0.0, self.b2).sum(1)

    def sample_noisy(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return math.sqrt(self.a2) * torch.randn(n, 1, generator=generator)

    def sample_clean(self, noisy: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.c * noisy + math.sqrt(self.b2) * torch.randn(noisy.shape, generator=generator)

    def continuous(self, x: torch.Tensor) -> torch.Tensor:
        return x

    @classmethod
    def load(cls, dataset: Any, device: torch.device, **params: Any) -> GaussianPair:
        raise NotImplementedError

    @classmethod
    def train(cls, dataset: Any, out: Path, seed: int = 0, **options: Any) -> Path:
        raise NotImplementedError


def test_mixture_of_logistics_integrates_to_one():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 5, generator=generator)
    means = 2 * torch.randn(4, 5, generator=generator)
    log_scales = torch.empty(4, 5).uniform_(-3, 0, generator=generator)
    grid = torch.linspace(-60, 60, 600_001, dtype=torch.float64)
    for row in range(4):
        params = [p[row].double().expand(len(grid), 5) for p in (logits, means, log_scales)]
        density = mol_log_prob(grid, *params).exp()
        assert torch.trapezoid(density, grid).item() == pytest.approx(1.0, abs=1e-6)


def test_mixture_of_logistics_samples_follow_its_density():
    generator = torch.Generator().manual_seed(1)
    logits, means = torch.tensor([[0.0, 1.0, -1.0]]), torch.tensor([[-2.0, 0.5, 3.0]])
    log_scales = torch.tensor([[-1.0, -0.5, -2.0]])
    n = 200_000
    draws = mol_sample(logits.expand(n, 3), means.expand(n, 3), log_scales.expand(n, 3),
                       generator)
    grid = torch.linspace(-30, 30, 300_001, dtype=torch.float64)
    density = mol_log_prob(grid, *(p.double().expand(len(grid), 3)
                                   for p in (logits, means, log_scales))).exp()
    mean = torch.trapezoid(grid * density, grid).item()
    assert draws.mean().item() == pytest.approx(mean, abs=0.02)
    below = torch.trapezoid(density * (grid < 0.5), grid).item()
    assert (draws < 0.5).double().mean().item() == pytest.approx(below, abs=0.005)


def test_made_conditional_d_depends_only_on_inputs_before_d():
    torch.manual_seed(0)
    net = MADE(dims=4, mixtures=3, hidden=32)
    x = torch.randn(1, 4, requires_grad=True)
    for d in range(4):
        params = torch.stack([part[0, d] for part in net.params(x)])
        (grad,) = torch.autograd.grad(params.sum(), x)
        assert torch.all(grad[0, d:] == 0)
        if d:
            assert torch.all(grad[0, :d] != 0)


def test_made_complete_keeps_what_it_was_given_and_fills_the_rest():
    torch.manual_seed(0)
    net = MADE(dims=4, mixtures=2, hidden=16)
    given = torch.randn(5, 4)
    done = net.complete(given, torch.Generator().manual_seed(0), start=2)
    assert torch.equal(done[:, :2], given[:, :2]) and not torch.equal(done[:, 2:], given[:, 2:])
    first_half = net.complete(given, torch.Generator().manual_seed(0), stop=2)
    assert torch.equal(first_half[:, 2:], given[:, 2:])


def test_elbo_is_tight_for_the_exact_smoothing_pair():
    pair = GaussianPair.exact(s2=0.5, sigma=0.3)
    x = torch.linspace(-2, 2, 9).unsqueeze(1)
    elbo = pair.elbo(x, samples=4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(elbo, normal_log_prob(x, 0.0, 0.5).sum(1).double(),
                               atol=1e-5, rtol=0)


def test_elbo_is_below_the_log_likelihood_by_the_posterior_gap():
    # A pair whose reverse model is off: p(x | x~) = N(0.9 x~, 0.1), p(x~) = N(0, 0.59).
    sigma, a2, c, b2 = 0.3, 0.59, 0.9, 0.1
    pair = GaussianPair(sigma, a2, c, b2)
    x = torch.linspace(-2, 2, 9).unsqueeze(1)
    elbo = pair.elbo(x, samples=20_000, generator=torch.Generator().manual_seed(0))
    log_likelihood = pair.marginal_log_prob(x).double()
    # Model posterior p(x~ | x) = N(m, v): precision 1/a2 + c^2/b2, mean v * c x / b2.
    v = 1 / (1 / a2 + c**2 / b2)
    m = v * c * x[:, 0].double() / b2
    kl = 0.5 * (sigma**2 / v + (x[:, 0].double() - m) ** 2 / v - 1 + math.log(v / sigma**2))
    assert torch.all(elbo < log_likelihood)
    torch.testing.assert_close(elbo, log_likelihood - kl, atol=0.01, rtol=0)


def test_single_step_is_the_posterior_mean_of_gaussian_data():
    s2, sigma, mean = 0.4, 0.3, 0.7

    class Shifted(GaussianPair):
        def noisy_log_prob(self, noisy: torch.Tensor) -> torch.Tensor:
            return normal_log_prob(noisy, mean, s2 + sigma**2).sum(1)

    noisy = torch.linspace(-2, 3, 11).unsqueeze(1)
    denoised = denoise_single_step(Shifted.exact(s2, sigma), noisy)
    torch.testing.assert_close(denoised, (s2 * noisy + sigma**2 * mean) / (s2 + sigma**2))


def test_single_step_is_tweedies_posterior_mean_for_a_bimodal_prior():
    """For any prior, x~ + sigma^2 grad log p(x~) = E[x | x~]; here p(x) is two Gaussians."""
    sigma, weights, means, var = 0.5, (0.3, 0.7), (-1.0, 1.5), 0.1

    class Bimodal(GaussianPair):
        def noisy_log_prob(self, noisy: torch.Tensor) -> torch.Tensor:
            parts = [math.log(w) + normal_log_prob(noisy, m, var + sigma**2)
                     for w, m in zip(weights, means, strict=True)]
            return torch.logsumexp(torch.stack(parts), 0).sum(1)

    noisy = torch.tensor([[-2.0], [-0.5], [0.3], [1.0], [2.5]], dtype=torch.float64)
    denoised = denoise_single_step(Bimodal(sigma, 1.0, 1.0, 1.0), noisy)[:, 0]
    grid = torch.linspace(-8, 8, 160_001, dtype=torch.float64)
    prior = sum(w * normal_log_prob(grid, m, var).exp() for w, m in zip(weights, means,
                                                                        strict=True))
    for value, estimate in zip(noisy[:, 0], denoised, strict=True):
        posterior = prior * normal_log_prob(value - grid, 0.0, sigma**2).exp()
        expected = torch.trapezoid(grid * posterior, grid) / torch.trapezoid(posterior, grid)
        assert estimate.item() == pytest.approx(expected.item(), abs=1e-6)


class Dataset1D:
    name, dims, shape, num_levels = "toy", 1, (1,), None


def test_samplers_count_their_network_calls_and_refuse_a_mismatched_sigma():
    pair, generator = GaussianPair.exact(0.5, 0.3), torch.Generator().manual_seed(0)
    assert SingleStep().sample(pair, Dataset1D(), 8, None, generator).nfe == 2
    assert TwoStep().sample(pair, Dataset1D(), 8, None, generator).nfe == 2
    noisy = Noisy(torch.randn(8, 1, generator=generator), sigma=0.3)
    assert SingleStep().sample(pair, Dataset1D(), 8, None, generator, condition=noisy).nfe == 1
    assert TwoStep().sample(pair, Dataset1D(), 8, None, generator, condition=noisy).nfe == 1
    with pytest.raises(Incompatible, match="trained at sigma=0.3"):
        SingleStep().sample(pair, Dataset1D(), 8, None, generator,
                            condition=Noisy(noisy.values, sigma=0.5))
    with pytest.raises(Incompatible, match="costs 2 network calls"):
        TwoStep().sample(pair, Dataset1D(), 8, 1, generator)
    with pytest.raises(Incompatible, match="implementing SmoothedPair"):
        TwoStep().sample(None, Dataset1D(), 8, None, generator)


def test_two_step_samples_follow_the_pairs_marginal():
    pair = GaussianPair(0.3, a2=0.59, c=0.9, b2=0.1)
    drawn = TwoStep().sample(pair, Dataset1D(), 100_000, None, torch.Generator().manual_seed(0))
    assert drawn.samples.var().item() == pytest.approx(0.9**2 * 0.59 + 0.1, rel=0.02)
    torch.manual_seed(0)
    scored = TwoStep(elbo_samples=4096).nll(pair, torch.zeros(3, 1), None)
    exact = pair.elbo(torch.zeros(1, 1), 100_000, torch.Generator().manual_seed(1))
    assert scored.nfe == 2 * 4096  # p(x~) and p(x | x~) for each of the bound's draws
    torch.testing.assert_close(scored.nll_nats, -exact.expand(3), atol=0.01, rtol=0)
