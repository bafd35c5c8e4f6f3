"""Sampling a smoothed pair (distribution smoothing, Meng et al. 2021): one or two steps.

Both samplers first draw x~ from p(x~) by ancestral sampling (`dims` network
calls), then undo the smoothing:

- `smoothing-single-step`: x = x~ + sigma^2 grad log p(x~) (Tweedie's formula:
  for small sigma the posterior mean E[x | x~]); one more call, a gradient.
  The result is continuous even on discrete data: it is not snapped to levels.
- `smoothing-two-step`: x ~ p(x | x~), the reverse model; `dims` more calls.

Given a `Noisy` condition (the denoising task) they skip the first step and
denoise the given x~. `smoothing-two-step` also scores data (density task):
its NLL is -ELBO of the pair, an upper bound on the true NLL, estimated with
`elbo_samples` draws of x~ per example from torch's global RNG (seeded per cell
by the runner). The budget is not a knob here: the process always costs what
it costs, and a budget below that is `Incompatible`.
"""

from __future__ import annotations

import torch

from arbench import (
    Condition,
    Dataset,
    Incompatible,
    LikelihoodOutput,
    Model,
    Noisy,
    Param,
    SampleOutput,
    Sampler,
    SmoothedPair,
    require,
)

NLL_BATCH = 1024


def _pair(model: Model | None, budget: int | None, cost: int) -> SmoothedPair:
    pair = require(model, SmoothedPair, "smoothing samplers")
    if budget is not None and budget < cost:
        raise Incompatible(f"this process costs {cost} network calls; budget {budget} is smaller")
    return pair


def _noisy_input(model: SmoothedPair, condition: Condition | None) -> torch.Tensor | None:
    if condition is None:
        return None
    if not isinstance(condition, Noisy):
        raise Incompatible("smoothing samplers condition only on a noisy observation (Noisy)")
    if abs(condition.sigma - model.sigma) > 1e-9:
        raise Incompatible(f"the pair was trained at sigma={model.sigma}; the observation has "
                           f"sigma={condition.sigma} (set the task's sigma to match)")
    return condition.values


class SingleStep(Sampler):
    """x~ from p(x~) (or given), then one gradient step: x~ + sigma^2 grad log p(x~)."""

    def sample(self, model: Model | None, dataset: Dataset, n: int, budget: int | None,
               generator: torch.Generator, condition: Condition | None = None) -> SampleOutput:
        pair = _pair(model, budget, 1 if condition is not None else dataset.dims + 1)
        noisy = _noisy_input(pair, condition)
        drawn = noisy is None
        if noisy is None:
            with torch.no_grad():
                noisy = pair.sample_noisy(n, generator)
        return SampleOutput(samples=denoise_single_step(pair, noisy),
                            nfe=pair.dims * drawn + 1)


def denoise_single_step(pair: SmoothedPair, noisy: torch.Tensor) -> torch.Tensor:
    """x~ + sigma^2 grad log p(x~): the posterior mean E[x | x~] to first order in sigma^2."""
    with torch.enable_grad():
        leaf = noisy.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(pair.noisy_log_prob(leaf).sum(), leaf)
    return (leaf + pair.sigma**2 * grad).detach()


class TwoStep(Sampler):
    """x~ from p(x~) (or given), then x ~ p(x | x~); scores data by -ELBO."""

    class Params(Sampler.Params):
        elbo_samples: int = Param(16, "noisy draws per example in the NLL bound", ge=1)

    params: Params

    def sample(self, model: Model | None, dataset: Dataset, n: int, budget: int | None,
               generator: torch.Generator, condition: Condition | None = None) -> SampleOutput:
        dims = dataset.dims
        pair = _pair(model, budget, dims if condition is not None else 2 * dims)
        noisy = _noisy_input(pair, condition)
        drawn = noisy is None
        with torch.no_grad():
            if noisy is None:
                noisy = pair.sample_noisy(n, generator)
            clean = pair.sample_clean(noisy, generator)
        return SampleOutput(samples=clean, nfe=dims * (1 + drawn))

    def nll(self, model: Model | None, x: torch.Tensor, budget: int | None) -> LikelihoodOutput:
        dims = x[0].numel()
        pair = _pair(model, budget, 2 * dims)
        samples = self.params.elbo_samples
        nats = torch.cat([-pair.elbo(chunk, samples) for chunk in x.split(NLL_BATCH)])
        return LikelihoodOutput(nll_nats=nats, nfe=2 * samples)  # p(x~) and p(x | x~) per draw
