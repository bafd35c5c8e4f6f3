"""ARDM sampling under a step budget: which positions to generate together.

With one network call per position (budget D per stage) the generative process
is the order-agnostic ARDM. With a budget of N < D calls, positions are
generated in N groups; every position of a group is sampled from the same
context, so the group costs (size) x L_i, with L_i the expected loss of one
position generated while i are known (the model's loss components). `dp`
finds the split of minimal total cost by dynamic programming; `naive` uses
equal groups. `nll` scores test data under exactly that process (one random
order per example), so the NLL vs steps table measures what the budget costs.

Upscale models run their stages one after another; the budget is split across
stages by the same program (no group spans two stages). Observed positions
(inpainting) come first in the order: they are known from the start.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from arbench import (
    Condition,
    Dataset,
    Incompatible,
    LikelihoodOutput,
    Model,
    Observed,
    OrderAgnostic,
    Param,
    SampleOutput,
    Sampler,
    require,
)


def group_cost(losses: np.ndarray, sizes: list[int], segment: int) -> float:
    """Total cost of consecutive groups of `sizes` over `losses`; inf if one spans segments."""
    cost, start = 0.0, 0
    for size in sizes:
        if start // segment != (start + size - 1) // segment:
            return float("inf")
        cost += size * losses[start]
        start += size
    return cost


def optimal_groups(losses: np.ndarray, budget: int, segment: int | None = None) -> list[int]:
    """Sizes of `budget` consecutive groups covering `losses` with minimal cost
    sum(size x losses[start]); no group crosses a multiple of `segment` (a stage)."""
    total = len(losses)
    segment = segment or total
    budget = min(budget, total)
    if budget < total // segment:
        raise Incompatible(f"{total // segment} stages need a budget of at least "
                           f"{total // segment} network calls, not {budget}")
    cost = np.full((budget + 1, total + 1), np.inf)
    back = np.zeros((budget + 1, total + 1), dtype=int)
    cost[0, 0] = 0.0
    for groups in range(1, budget + 1):
        for end in range(1, total + 1):
            first = (end - 1) // segment * segment  # a group starts in the stage of its end
            starts = np.arange(first, end)
            options = cost[groups - 1, starts] + (end - starts) * losses[starts]
            best = int(np.argmin(options))
            cost[groups, end], back[groups, end] = options[best], starts[best]
    # Exactly `budget` groups: with more context a position never costs more in
    # expectation, so merging groups only looks cheaper through noise in the estimates.
    groups, sizes, end = budget, [], total
    while groups > 0:
        start = back[groups, end]
        sizes.append(end - start)
        end, groups = start, groups - 1
    return sizes[::-1]


def naive_groups(total: int, budget: int, segment: int | None = None) -> list[int]:
    """Equal budgets per stage, equal-size groups within a stage."""
    segment = segment or total
    stages = total // segment
    if budget < stages:
        raise Incompatible(f"{stages} stages need a budget of at least {stages} network calls")
    budget = min(budget, total)
    sizes = []
    for stage in range(stages):
        calls = budget // stages + (stage < budget % stages)
        sizes += [len(part) for part in np.array_split(np.arange(segment), calls)]
    return sizes


class ARDMSampler(Sampler):
    """`policy`: dp (optimal split of the budget) or naive (equal groups)."""

    class Params(Sampler.Params):
        policy: Literal["dp", "naive"] = Param(
            "dp", "dp: the budget split by dynamic programming; naive: equal groups")

    params: Params

    def _groups(self, model: OrderAgnostic, known_count: int,
                budget: int | None) -> list[list[int]]:
        """Group sizes per stage for generating the D - known_count unknown positions."""
        per_stage = model.dims - known_count
        if per_stage == 0:
            return [[] for _ in range(model.stages)]
        losses = model.loss_components[:, known_count:].cpu().double().numpy()
        total = losses.size
        budget = total if budget is None else budget
        if self.params.policy == "dp":  # the declared choices: dp or naive
            sizes = optimal_groups(losses.reshape(-1), budget, per_stage)
        else:
            sizes = naive_groups(total, budget, per_stage)
        stages: list[list[int]] = [[] for _ in range(model.stages)]
        stage, filled = 0, 0
        for size in sizes:
            if filled == per_stage:
                stage, filled = stage + 1, 0
            stages[stage].append(size)
            filled += size
        return stages

    @torch.no_grad()
    def nll(self, model: Model | None, x: torch.Tensor, budget: int | None) -> LikelihoodOutput:
        ardm = require(model, OrderAgnostic, "ardm")
        x = x.flatten(1)
        plan = self._groups(ardm, 0, budget)
        nats = torch.cat([self._nll(ardm, chunk, plan) for chunk in x.split(256)])
        return LikelihoodOutput(nats, nfe=sum(len(sizes) for sizes in plan))

    @staticmethod
    def _nll(model: OrderAgnostic, x: torch.Tensor, plan: list[list[int]]) -> torch.Tensor:
        """-log p(x) under the grouped process, one random order per example and stage."""
        digits, total = model.digits, x.new_zeros(x.shape[0], dtype=torch.float64)
        for stage, sizes in enumerate(plan, start=1):
            ranks = random_ranks_like(x)
            target = digits.digit(x, stage)[..., None]
            start = 0
            for size in sizes:
                known = ranks < start
                log_p = model.step_log_probs(digits.current(x, known, stage), known, stage)
                new = (ranks >= start) & (ranks < start + size)
                total -= (log_p.gather(-1, target).squeeze(-1) * new).sum(1).double()
                start += size
        return total

    @torch.no_grad()
    def sample(self, model: Model | None, dataset: Dataset, n: int, budget: int | None,
               generator: torch.Generator, condition: Condition | None = None) -> SampleOutput:
        ardm = require(model, OrderAgnostic, "ardm")
        device = generator.device
        observed = torch.zeros(n, ardm.dims, dtype=torch.bool, device=device)
        values = torch.zeros(n, ardm.dims, dtype=torch.long, device=device)
        if condition is not None:
            if not isinstance(condition, Observed):
                raise Incompatible("ardm conditions on observed positions (super-resolution, "
                                   "inpainting), not on a mixture")
            observed = condition.mask.reshape(n, -1)
            values = to_levels(condition.values.reshape(n, -1), ardm.num_levels)
        counts = observed.sum(1)
        if (counts != counts[0]).any():
            raise ValueError("ardm needs the same number of observed positions in every example")
        plan = self._groups(ardm, int(counts[0]), budget)
        x = torch.zeros(n, ardm.dims, dtype=torch.long, device=device)
        digits = ardm.digits
        for stage, sizes in enumerate(plan, start=1):
            # observed positions first, the rest in a random order
            ranks = (torch.rand(n, ardm.dims, generator=generator, device=device)
                     + (~observed).float()).argsort(1).argsort(1)
            x = x.where(~observed, digits.coarse(values, stage))
            start = int(counts[0])
            for size in sizes:
                known = ranks < start
                log_p = ardm.step_log_probs(x, known, stage)
                drawn = torch.multinomial(log_p.exp().flatten(0, 1), 1, generator=generator)
                new = (ranks >= start) & (ranks < start + size)
                x = x + new * drawn.view(n, ardm.dims) * digits.unit(stage)
                start += size
        samples = x.view(n, *dataset.shape)
        nfe = sum(len(sizes) for sizes in plan)
        if condition is None:
            return SampleOutput(samples=samples, nfe=nfe)
        return SampleOutput(samples=dataset.continuous(samples), nfe=nfe)


def random_ranks_like(x: torch.Tensor) -> torch.Tensor:
    """Each row: a uniformly random order of its positions, drawn from torch's global RNG
    (seeded per cell by the runner)."""
    return torch.rand(x.shape, device=x.device).argsort(1).argsort(1)


def to_levels(values: torch.Tensor, num_levels: int) -> torch.Tensor:
    """Continuous values in [-1, 1] back to the nearest of `num_levels` levels."""
    levels = ((values.clamp(-1, 1) + 1) * (num_levels - 1) / 2).round()
    return levels.long()
