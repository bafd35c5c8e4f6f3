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

Given a prompt (observed values at the first P positions of every row, as the
continuation task gives them) it draws the D - P values after it, D - P calls: through
the model's cache window where it has one (the first call computes the prompt, as
``generate``'s does), else one full pass per value.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from arbench import (
    CausalConditionals,
    CausalLogits,
    Condition,
    Dataset,
    Incompatible,
    LikelihoodOutput,
    Model,
    Observed,
    SampleOutput,
    Sampler,
    implements,
    require,
)
from arbench_plugins.samplers.ardm import to_levels

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
        if condition is not None:
            return self._continue(model, dataset, n, budget, generator, condition)
        causal = require(model, CausalConditionals, "ancestral sampling")
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

    @torch.no_grad()
    def _continue(self, model: Model | None, dataset: Dataset, n: int, budget: int | None,
                  generator: torch.Generator, condition: Condition) -> SampleOutput:
        """The values after each row's prompt, one call each, in data units."""
        target = require(model, CausalLogits, "ancestral sampling from a prompt")
        x, start = prompt_of("ancestral sampling", dataset, n, condition)
        if positions(target, dataset.dims) != list(range(dataset.dims)):
            raise Incompatible("ancestral sampling continues a prompt in raster order only")
        _check_budget(budget, dataset.dims - start)
        uniforms = position_uniforms(n, dataset.dims, generator)
        cache = window_cache(target, n)
        at = torch.empty(n, dtype=torch.long, device=x.device)
        for i in range(start, dataset.dims):
            logits = (cache.window(x, at.fill_(i), 1)[:, 0] if cache is not None else
                      target.logits(x.view(n, *dataset.shape))[:, i])
            x[:, i] = draw_levels(logits, uniforms[:, i])
        return SampleOutput(samples=dataset.continuous(x.view(n, *dataset.shape)),
                            nfe=dataset.dims - start)

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


def prompt_of(name: str, dataset: Dataset, n: int, condition: Condition
              ) -> tuple[torch.Tensor, int]:
    """The levels ``(n, D)`` of a condition that observes the same first P positions of
    every row (a prompt; zero after it), and P."""
    if not isinstance(condition, Observed) or dataset.num_levels is None:
        raise Incompatible(f"{name} conditions on a prompt only (the first positions "
                           "observed)")
    mask = condition.mask.reshape(n, -1)
    start = int(mask[0].sum())
    if not (bool(mask[:, :start].all()) and not bool(mask[:, start:].any())):
        raise Incompatible(f"{name} continues a prompt: the observed positions must be the "
                           "first P of every row")
    levels = to_levels(condition.values.reshape(n, -1), dataset.num_levels)
    return levels.masked_fill_(~mask, 0), start


def window_cache(model: CausalLogits, n: int) -> FromStart | None:
    """The model's cache for `n` rows when it has a ``window``
    (`arbench.plugin.capabilities.InOrder.incremental`), behind `FromStart`. None: the
    model has none."""
    incremental = getattr(model, "incremental", None)
    cache = incremental(n) if incremental is not None else None
    return FromStart(cache) if cache is not None and hasattr(cache, "window") else None


class FromStart:
    """A window cache whose first call also computes every position before the rows'
    starts (a prompt, observed values before the first one drawn), in the same call, as
    a cache that has computed nothing must; later calls are the cache's own."""

    def __init__(self, cache: Any) -> None:
        self.cache, self.fresh = cache, True

    def window(self, x: torch.Tensor, starts: torch.Tensor, width: int) -> torch.Tensor:
        """Logits ``(n, width, K)`` at each row's positions ``starts ..``."""
        if not self.fresh:
            return self.cache.window(x, starts, width)  # type: ignore[no-any-return]
        self.fresh = False
        reach = int(starts.max())
        if not reach:
            return self.cache.window(x, starts, width)  # type: ignore[no-any-return]
        logits = self.cache.window(x, torch.zeros_like(starts), reach + width)
        at = starts[:, None] + torch.arange(width, device=starts.device)
        return logits.gather(1, at[..., None].expand(-1, -1, logits.shape[-1]))  # type: ignore[no-any-return]
