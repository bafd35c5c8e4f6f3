"""Jacobi (fixed-point) decoding: the ancestral sample, with all positions in parallel.

Song, Meng, Liao and Ermon (ICML 2021) write ancestral sampling as D equations
``x_i = F_i(x_<i, u_i)``: the inverse CDF of the model's conditional at a
uniform drawn up front. From an initial guess (zeros) one network call
recomputes every position from the current guess; position i is final once
every position before it is, so the iteration reaches the unique solution, the
ancestral sample for those uniforms, in at most D calls and usually far fewer.
The uniforms are ancestral sampling's (`position_uniforms`), so ``jacobi`` and
``ancestral`` at one seed give the same samples bit for bit.

Each call also tells which prefix is final: the first position, in the model's
order, whose value changed was computed from unchanged (final) values, so it and
everything before it are final. The iteration stops there and never rewrites a
final value. ``window=W`` updates only the W positions after the final prefix;
on 1-D sequences (audio) it also crops the call's input to the prefix that
reaches the window's end, so each call costs O(prefix) rather than O(D). The
sample is the same; the calls and the seconds change (benchmarks/jacobi_speed.py).

Observed positions (super-resolution, inpainting) are fixed from the start: the
model's conditionals of the others given them are the model's, not a posterior
that reads later observations. The budget caps the calls; a budget below D may
stop before the fixed point (``diagnostics["converged"]`` says what share
reached it).
"""

from __future__ import annotations

import torch

from arbench import (
    MAX_POSITIONS,
    CausalLogits,
    Condition,
    Dataset,
    Incompatible,
    LikelihoodOutput,
    Model,
    Observed,
    Param,
    SampleOutput,
    Sampler,
    require,
)
from arbench_plugins.samplers.ancestral import Ancestral, draw_levels, position_uniforms, positions
from arbench_plugins.samplers.ardm import to_levels

LISTED = 256  # examples whose calls the diagnostics list: records stay small


class Jacobi(Sampler):
    """Fixed-point iteration of the model's own conditionals: exact, at most D calls."""

    exactness = "exact"  # the ancestral sample when the budget lets it converge

    class Params(Sampler.Params):
        window: int = Param(0, "positions updated per call after the final prefix "
                           "(0 or more than the data's: all of them)", ge=0, le=MAX_POSITIONS)

    params: Params

    @torch.no_grad()
    def sample(self, model: Model | None, dataset: Dataset, n: int, budget: int | None,
               generator: torch.Generator, condition: Condition | None = None) -> SampleOutput:
        causal = require(model, CausalLogits, "jacobi")
        x, fixed = observed_start("jacobi", dataset, n, condition, generator.device)
        dims, device = dataset.dims, generator.device
        uniforms = position_uniforms(n, dims, generator)
        order = torch.tensor(positions(causal, dims), device=device)
        iteration = _Iteration(causal, tuple(dataset.shape), x, uniforms, fixed, order)
        window = min(self.params.window or dims, dims)
        calls = iteration.solve(window, dims if budget is None else budget)
        samples = iteration.x.view(n, *dataset.shape)
        diagnostics = {"window": window, **_convergence(iteration.calls_to_converge)}
        if condition is not None:
            samples = dataset.continuous(samples)
        return SampleOutput(samples=samples, nfe=calls, diagnostics=diagnostics)

    def nll(self, model: Model | None, x: torch.Tensor, budget: int | None) -> LikelihoodOutput:
        """The model's exact likelihood (one parallel pass, NFE 1); sampling it exactly takes
        D calls at most, so a smaller budget is refused."""
        dims = x[0].numel()
        if budget is not None and budget < dims:
            raise Incompatible(f"jacobi reaches the exact sample whose likelihood this is in "
                               f"at most D={dims} calls; budget {budget} is smaller")
        return Ancestral().nll(model, x, None)


def _convergence(calls: torch.Tensor) -> dict[str, float | list[int | None]]:
    """The share of examples that reached the fixed point, the mean and most calls they
    took, and the calls of the first `LISTED` (None: not reached in the budget)."""
    reached = calls[calls > 0].double()
    return {"converged": len(reached) / len(calls),
            "calls_mean": float(reached.mean()) if len(reached) else float("nan"),
            "calls_max": float(reached.max()) if len(reached) else float("nan"),
            "calls_per_example": [c or None for c in calls[:LISTED].tolist()]}


def observed_start(name: str, dataset: Dataset, n: int, condition: Condition | None,
                   device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Where a parallel sampler of categorical conditionals starts: levels ``(n, D)``, zero
    except the observed values (super-resolution, inpainting), and the mask of those."""
    if dataset.num_levels is None:
        raise Incompatible(f"{name} works on categorical conditionals; continuous data "
                           "has none")
    if condition is not None and not isinstance(condition, Observed):
        raise Incompatible(f"{name} conditions on observed positions (super-resolution, "
                           "inpainting) only")
    x = torch.zeros(n, dataset.dims, dtype=torch.long, device=device)
    fixed = torch.zeros(n, dataset.dims, dtype=torch.bool, device=device)
    if condition is not None:
        fixed = condition.mask.reshape(n, -1)
        x = x.where(~fixed, to_levels(condition.values.reshape(n, -1), dataset.num_levels))
    return x, fixed


class _Iteration:
    """The state of one batch's fixed-point iteration, in the model's order."""

    def __init__(self, model: CausalLogits, shape: tuple[int, ...], x: torch.Tensor,
                 uniforms: torch.Tensor, fixed: torch.Tensor, order: torch.Tensor) -> None:
        self.model, self.shape, self.x = model, shape, x
        self.uniforms, self.fixed, self.order = uniforms, fixed, order
        n, dims = x.shape
        self.final = torch.zeros(n, dtype=torch.long, device=x.device)  # final prefix length
        self.calls_to_converge = torch.zeros(n, dtype=torch.long)
        # Cropping the input to a prefix is exact only for a 1-D sequence in raster order.
        self.croppable = len(shape) == 1 and bool(
            torch.equal(order, torch.arange(dims, device=order.device)))

    def solve(self, window: int, max_calls: int) -> int:
        """Iterate until every example's prefix is final or `max_calls`; the calls made."""
        dims = self.x.shape[1]
        calls = 0
        while calls < max_calls:
            active = (self.final < dims).nonzero().squeeze(1)
            if len(active) == 0:
                break
            start = int(self.final[active].min())
            end = min(start + window, dims)
            self._call(active, end)
            calls += 1
            done = (self.final == dims).cpu() & (self.calls_to_converge == 0)
            self.calls_to_converge[done] = calls
        return calls

    def _call(self, active: torch.Tensor, end: int) -> None:
        """One network call on the `active` examples; updates the positions after each one's
        final prefix up to order index `end`, and advances the prefix."""
        x = self.x[active]
        if self.croppable:
            logits = self.model.logits(x[:, :end])
        else:
            logits = self.model.logits(x.view(len(active), *self.shape))
        slots = self.order[:end]  # flat positions of order indices 0 .. end - 1
        drawn = draw_levels(logits[:, slots], self.uniforms[active][:, slots])
        index = torch.arange(end, device=x.device)
        final = self.final[active]
        free = (index >= final[:, None]) & ~self.fixed[active][:, slots]
        old = x[:, slots]
        new = old.where(~free, drawn)
        changed = new != old
        # The first changed value came from final values: it and all before it are final.
        first = torch.where(changed.any(1), changed.float().argmax(1),
                            torch.full_like(final, end - 1))
        self.final[active] = torch.maximum(final, first + 1)
        x[:, slots] = new
        self.x[active] = x
