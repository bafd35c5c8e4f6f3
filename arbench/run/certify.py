"""Certify a sampler's claim of exactness on models small enough to enumerate.

Each enumerable model (`ENUMERABLES`) is a random `TableModel` of 4 values of 3 levels
(81 sequences): the uncached path (no cache), the cached paths (a cache with
``window``, as the transformer's), and the same table with one value observed (what
super-resolution and inpainting ask of a sampler that keeps observed values), and a
random instance of each model family that offers one (Hugging Face's decoding runs
only on a transformers model); the cached table and each family's instance are also
given their first value (a prompt, as the continuation task gives one). The sampler
draws N samples on each, and Pearson's chi-square compares their counts with N times the
exact probabilities (`arbench.run.exactness.certify`). A sampler that cannot run on one of them
(`Incompatible`) gets no verdict there. A draft the sampler fits on the data (the
n-gram) is fitted on sequences of another table model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import torch

from arbench.errors import Incompatible
from arbench.plugin.capabilities import Logits
from arbench.plugin.conditions import Observed
from arbench.plugin.contracts import Model, Sampler, level_values
from arbench.plugin.registry import registry
from arbench.plugin.specs import ModelSpec
from arbench.results.certificate import ALPHA, SAMPLES, Verdict
from arbench.run.enumerable import TableData, TableModel, WindowTableModel
from arbench.run.exactness import all_sequences, certify, joint_probabilities

DIMS, LEVELS = 4, 3
OBSERVED_POSITION, OBSERVED_LEVEL = 1, 2
PROMPT_LEVEL = 1  # the first value's, given as a prompt


@dataclass(frozen=True)
class Enumerable:
    """A model, the data it samples (the draft's train split), an optional condition on
    `n` rows, and the exact distribution the samples must follow."""

    name: str
    model: Model
    data: TableData
    condition: Callable[[int], Observed] | None
    probabilities: torch.Tensor


def enumerables() -> list[Enumerable]:
    """The uncached table, the table behind a window cache, and the table given one value."""
    data = TableData(TableModel(DIMS, LEVELS, seed=2))
    plain, cached = TableModel(DIMS, LEVELS, seed=1), WindowTableModel(DIMS, LEVELS, seed=1)
    joint = joint_probabilities(plain, DIMS, LEVELS)
    # Given x_1 = 2, the others follow prod over i != 1 of p(x_i | x_<i): the model's
    # conditionals with the observation in their history (what Jacobi decoding and
    # ancestral sampling with fixed values draw), not the joint restricted to x_1 = 2.
    sequences = all_sequences(DIMS, LEVELS)
    log_p = plain.logits(sequences).double().log_softmax(-1).gather(
        2, sequences[..., None])[..., 0]
    others = (log_p.sum(1) - log_p[:, OBSERVED_POSITION]).exp()
    conditional = torch.where(sequences[:, OBSERVED_POSITION] == OBSERVED_LEVEL, others, 0.0)

    def observed(n: int) -> Observed:
        mask = torch.zeros(n, DIMS, dtype=torch.bool)
        mask[:, OBSERVED_POSITION] = True
        return Observed(mask, data.continuous(torch.full((n, DIMS), OBSERVED_LEVEL)))

    return [Enumerable("table", plain, data, None, joint),
            Enumerable("table, window cache", cached, data, None, joint),
            Enumerable(f"table, value {OBSERVED_POSITION} observed", plain, data, observed,
                       conditional / conditional.sum()),
            prompted(Enumerable("table, window cache", cached, data, None, joint)),
            *(case for family in families(data) for case in (family, prompted(family)))]


def families(data: TableData) -> list[Enumerable]:
    """A random instance of each registered model family that offers one
    (`arbench.plugin.contracts.Model.enumerable`), over the tables' values and levels."""
    found = []
    for spec in registry().all(ModelSpec):
        model = spec.load().enumerable(data, seed=1)
        if model is not None:
            found.append(Enumerable(spec.name, model, data, None,
                                    joint_probabilities(cast(Logits, model), DIMS, LEVELS)))
    return found


def prompted(case: Enumerable) -> Enumerable:
    """`case` given its first value, `PROMPT_LEVEL` (a prompt): the others follow
    p(x | x_0) = p(x) / p(x_0), the joint on the sequences that start so, renormalised."""
    starts = all_sequences(DIMS, LEVELS)[:, 0] == PROMPT_LEVEL
    given = torch.where(starts, case.probabilities, 0.0)

    def prompt(n: int) -> Observed:
        mask = torch.zeros(n, DIMS, dtype=torch.bool)
        mask[:, 0] = True
        return Observed(mask, case.data.continuous(torch.full((n, DIMS), PROMPT_LEVEL)))

    return Enumerable(f"{case.name}, a prompt (value 0 given)", case.model, case.data, prompt,
                      given / given.sum())


def certify_sampler(sampler: Sampler, samples: int = SAMPLES, alpha: float = ALPHA,
                    seed: int = 0, budget: int | None = None) -> list[Verdict]:
    """One verdict per enumerable model: the sampler's samples against the exact
    distribution, or why it could not run there."""
    verdicts = []
    for case in enumerables():
        generator = torch.Generator().manual_seed(seed)
        condition = case.condition(samples) if case.condition else None
        try:
            drawn = sampler.sample(case.model, case.data, samples, budget, generator,
                                   condition=condition).samples
        except Incompatible as error:
            verdicts.append(Verdict(model=case.name, samples=samples, reason=str(error)))
            continue
        found = certify(_levels(drawn), case.probabilities, LEVELS, alpha)
        verdicts.append(Verdict(model=case.name, samples=samples, statistic=found.statistic,
                                dof=found.bins - 1, p_value=found.p_value,
                                passed=found.passed))
    return verdicts


def _levels(drawn: torch.Tensor) -> torch.Tensor:
    """Samples as level indices: a conditional sampler returns values in data units."""
    if not drawn.dtype.is_floating_point:
        return drawn
    values = level_values(LEVELS, device=drawn.device)
    return torch.bucketize(drawn.contiguous(), (values[1:] + values[:-1]) / 2)
