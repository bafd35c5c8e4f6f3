"""Ancestral sampling: the exact reference every faster sampler is compared against.

It draws the D values one at a time in the model's order (raster unless the
model's `value_order` says otherwise), calling the network once per value, so
its samples follow the model's distribution exactly and its cost is always D
network calls. A model with an incremental cache (`Model.incremental`: the
WaveNet's per-layer queues, O(layers) per value; the PixelCNN's rows drawn so
far; PixelCNN++'s row bands) makes each call cheaper; any other is run over
the whole history at every step
(`naive_sample`, also the reference the cache is tested against: the same
generator gives the same samples).

The noise is drawn before the first call: one uniform per position
(`position_uniforms`), each value the inverse CDF of its categorical at its
uniform (`draw_levels`). Jacobi decoding draws the same uniforms, so at one
seed both samplers return the same samples, bit for bit.
"""

from __future__ import annotations

import math

import torch

from arbench import (
    CausalConditionals,
    CausalLogits,
    Condition,
    Dataset,
    Incompatible,
    LikelihoodOutput,
    Model,
    SampleOutput,
    Sampler,
    implements,
    require,
)

NLL_BATCH = 512


def _check_budget(budget: int | None, dims: int) -> None:
    if budget is not None and budget < dims:
        raise Incompatible(
            f"ancestral sampling needs D={dims} network calls; budget {budget} is smaller"
        )


class Ancestral(Sampler):
    """D network calls, one per value in the model's order: exact by construction."""

    exactness = "exact"

    def sample(
        self,
        model: Model | None,
        dataset: Dataset,
        n: int,
        budget: int | None,
        generator: torch.Generator,
        condition: Condition | None = None,
    ) -> SampleOutput:
        causal = require(model, CausalConditionals, "ancestral sampling")
        if condition is not None:
            raise Incompatible("ancestral sampling here is unconditional")
        _check_budget(budget, dataset.dims)
        cache = causal.incremental(n)
        if cache is None:
            return naive_sample(causal, dataset, n, generator)
        x = torch.zeros(n, dataset.dims, dtype=torch.long, device=generator.device)
        uniforms = position_uniforms(n, dataset.dims, generator)
        previous = None
        for i in positions(causal, dataset.dims):
            x[:, i] = previous = draw_levels(cache.logits(previous), uniforms[:, i])
        return SampleOutput(samples=x.view(n, *dataset.shape), nfe=dataset.dims)

    def nll(self, model: Model | None, x: torch.Tensor, budget: int | None) -> LikelihoodOutput:
        causal = require(model, CausalConditionals, "ancestral scoring")
        dims = math.prod(x.shape[1:])
        _check_budget(budget, dims)
        with torch.no_grad():
            nll = torch.cat([-causal.log_prob(chunk) for chunk in x.split(NLL_BATCH)])
        return LikelihoodOutput(nll_nats=nll, nfe=1)  # one parallel pass per example


@torch.no_grad()
def naive_sample(model: CausalConditionals, dataset: Dataset, n: int,
                 generator: torch.Generator) -> SampleOutput:
    """D values one at a time, each from the model run over the whole history so far:
    from its logits at the shared uniforms, or (continuous models) its `sample_value`."""
    dims = dataset.dims
    # Drawing needs the generator's device, and the runner builds the generator on
    # the device it loaded the model onto. Levels are integers, continuous data floats.
    dtype = torch.long if dataset.num_levels is not None else torch.float32
    x = torch.zeros(n, dims, dtype=dtype, device=generator.device)
    order = positions(model, dims)
    if implements(model, CausalLogits):
        uniforms = position_uniforms(n, dims, generator)
        for i in order:
            x[:, i] = draw_levels(model.logits(x.view(n, *dataset.shape))[:, i], uniforms[:, i])
    else:
        for i in order:
            x[:, i] = model.sample_value(x.view(n, *dataset.shape), i, generator)
    return SampleOutput(samples=x.view(n, *dataset.shape), nfe=dims)


def position_uniforms(n: int, dims: int, generator: torch.Generator) -> torch.Tensor:
    """The sampling noise of `n` sequences of `dims` values, drawn up front ``(n, dims)``
    and indexed by flat position: what ancestral and Jacobi sampling share."""
    return torch.rand(n, dims, generator=generator, device=generator.device,
                      dtype=torch.float64)


def draw_levels(logits: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draws ``(...)`` from categorical `logits` ``(..., K)`` at `uniforms`
    ``(...)``: the number of levels whose cumulative probability is below the uniform."""
    cdf = torch.softmax(logits.double(), dim=-1).cumsum(-1)
    return (cdf < uniforms[..., None]).sum(-1).clamp(max=logits.shape[-1] - 1)


def positions(model: CausalConditionals | CausalLogits, dims: int) -> list[int]:
    """The flat positions in the model's order (`value_order`; raster by default)."""
    order = model.value_order()
    return list(range(dims)) if order is None else order.tolist()
