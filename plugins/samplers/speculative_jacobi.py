"""Speculative Jacobi decoding (SJD): Jacobi iteration with the speculative acceptance rule.

Teng et al. (arXiv 2410.01699). Every position past the final prefix holds a draft
value and the distribution q it was drawn from (at first, uniform). One target call
gives p at every position from the current values; from the first non-final position,
in the model's order, each draft is accepted with probability min(1, p(y) / q(y)). At
the first rejection the value is drawn from the residual max(0, p - q) (normalised);
when the window is all accepted, the next value comes from p. Those values are final;
every later position is drawn again from this call's p, which becomes its q. The
first non-final position always sees a final context, so each accepted or drawn value
follows the model's conditional exactly: lossless by design, no draft model
(`exactness = "distribution"`, certified by tests/test_exactness.py). ``window=W``
verifies and redraws only W positions past the prefix (0: all).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from arbench import (
    MAX_POSITIONS,
    CausalLogits,
    Condition,
    Dataset,
    LikelihoodOutput,
    Model,
    Param,
    SampleOutput,
    Sampler,
    require,
)
from arbench_plugins.samplers.ancestral import Ancestral
from arbench_plugins.samplers.speculative import Rule, _State


class SpeculativeJacobi(Sampler):
    """Jacobi iterates accepted by the speculative rule: the model's distribution exactly."""

    exactness = "distribution"
    rule: ClassVar[type[Rule]] = Rule
    class Params(Sampler.Params):
        window: int = Param(0, "positions verified per call past the final prefix (0 or more "
                               "than the data's: all)", ge=0, le=MAX_POSITIONS)

    params: Params

    @torch.no_grad()
    def sample(self, model: Model | None, dataset: Dataset, n: int, budget: int | None,
               generator: torch.Generator, condition: Condition | None = None) -> SampleOutput:
        target = require(model, CausalLogits, "speculative Jacobi decoding")
        state = _State.start(target, dataset, n, generator, condition)
        dims, levels = dataset.dims, state.levels
        q = torch.full((n, dims, levels), 1 / levels, dtype=torch.float64,
                       device=generator.device)
        drafts = torch.randint(levels, (n, dims), generator=generator, device=generator.device)
        state.x.copy_(state.x.where(state.fixed, drafts))
        window = min(self.params.window or dims, dims)
        calls = 0
        while calls < (budget or dims) and bool(state.active().any()):
            rows = state.active().nonzero().squeeze(1)
            q[rows] = self._iterate(target, state, rows, q[rows], window, generator, self.rule)
            calls += 1
        return state.output(dataset, condition, calls, budget, k=window)

    def nll(self, model: Model | None, x: torch.Tensor, budget: int | None) -> LikelihoodOutput:
        """The model's exact likelihood: one parallel pass, as ancestral scores."""
        return Ancestral().nll(model, x, None)

    @staticmethod
    def _iterate(target: CausalLogits, state: _State, rows: torch.Tensor, q: torch.Tensor,
                 window: int, generator: torch.Generator, rule: type[Rule]) -> torch.Tensor:
        """One call on `rows`: verify the window's drafts in order, draw the value at the
        first rejection (or after the window), redraw the rest from p; returns their q."""
        n, dims = len(rows), state.x.shape[1]
        arange, x = torch.arange(n, device=rows.device), state.x[rows]
        p_flat = target.logits(x.view(n, *state.shape)).double().softmax(-1)
        start = state.prefix[rows]
        index = start[:, None] + torch.arange(window + 1, device=rows.device)
        valid = index < dims
        flat = state.order[index.clamp(max=dims - 1)]
        p, q_window = p_flat[arange[:, None], flat], q[arange[:, None], flat]
        chosen = x.gather(1, flat)[..., None]
        uniform = torch.rand(n, window + 1, generator=generator, device=x.device,
                             dtype=torch.float64)
        fixed = state.fixed[arange[:, None], flat] | ~valid
        accepted = rule.accept(p.gather(2, chosen)[..., 0], q_window.gather(2, chosen)[..., 0],
                               uniform) | fixed
        accepted[:, window] = False  # the position after the window is drawn, not verified
        run = accepted.long().cumprod(1).sum(1)
        state.count(accepted[:, :window], run, fixed[:, :window], n)
        at = run.clamp(max=window)
        residual = rule.residual(p[arange, at], q_window[arange, at])
        beyond = at == window  # the whole window was accepted: draw from p
        weights = torch.where(beyond[:, None], p[arange, at], residual)
        weights = torch.where(weights.sum(-1, keepdim=True) > 0, weights, p[arange, at])
        drawn = torch.multinomial(weights, 1, generator=generator)[:, 0]
        position = flat[arange, at]
        ends = start + run + 1
        writable = valid[arange, at] & ~state.fixed[rows, position]
        x[arange, position] = x[arange, position].where(~writable, drawn)
        # every position past the new prefix: a new draft from this call's p
        later = torch.arange(dims, device=x.device)[None] >= ends[:, None]
        later_flat = torch.zeros_like(later)
        later_flat[:, state.order] = later
        redraw = later_flat & ~state.fixed[rows]
        fresh = torch.multinomial(p_flat.view(-1, p_flat.shape[-1]), 1,
                                  generator=generator).view(n, dims)
        x = x.where(~redraw, fresh)
        q = torch.where(redraw[..., None], p_flat, q)
        state.x[rows] = x
        state.prefix[rows] = ends.clamp(max=dims)
        return q
