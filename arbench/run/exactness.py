"""Certificates that a sampler samples its model's distribution.

On a model small enough to enumerate (D values of K levels: K^D sequences) the exact
probability of every sequence is known (`joint_probabilities`), so N samples can be
compared with it by a chi-square goodness-of-fit test (`certify`): a sampler that
claims to be exact in distribution must pass at the stated alpha, and a deliberately
broken one must fail. A table model is such a model: a random categorical for every
prefix, no structure a
sampler could exploit by accident (`arbench.run.enumerable`). Used by `arbench certify`
(`arbench.run.certify`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from arbench.plugin.capabilities import Logits

MIN_EXPECTED = 5.0  # bins expected fewer times are pooled, as the chi-square test needs


def all_sequences(dims: int, levels: int) -> torch.Tensor:
    """Every sequence, ``(K^D, D)``, in the order `sequence_index` numbers them."""
    return torch.tensor(list(itertools.product(range(levels), repeat=dims)))


def sequence_index(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Each sequence's row in `all_sequences`."""
    x = x.reshape(len(x), -1).cpu().long()
    weights = levels ** torch.arange(x.shape[1] - 1, -1, -1)
    return (x * weights).sum(1)


def joint_probabilities(model: Logits, dims: int, levels: int) -> torch.Tensor:
    """p(x) of every sequence of `dims` values, from the model's own conditionals,
    ``(K^D,)``."""
    x = all_sequences(dims, levels)
    log_p = model.logits(x).double().log_softmax(-1).gather(2, x[..., None]).sum((1, 2))
    return log_p.exp()


@dataclass(frozen=True)
class Certificate:
    """A chi-square test of N samples against the exact distribution."""

    samples: int
    bins: int
    statistic: float
    p_value: float
    alpha: float

    @property
    def passed(self) -> bool:
        """Whether the samples fit the exact distribution at the certificate's alpha."""
        return self.p_value >= self.alpha


def certify(samples: torch.Tensor, probabilities: torch.Tensor, levels: int,
            alpha: float = 1e-3) -> Certificate:
    """Pearson's chi-square of the samples' sequence counts against N p(x), bins expected
    fewer than `MIN_EXPECTED` times pooled into one."""
    from scipy.stats import chisquare

    n = len(samples)
    observed = torch.bincount(sequence_index(samples, levels),
                              minlength=len(probabilities)).double()
    expected = probabilities.double() * n
    small = expected < MIN_EXPECTED
    if small.any():
        observed = torch.cat([observed[~small], observed[small].sum()[None]])
        expected = torch.cat([expected[~small], expected[small].sum()[None]])
    expected = expected * (observed.sum() / expected.sum())  # float rounding of sum(p) = 1
    result = chisquare(observed.numpy(), expected.numpy())
    return Certificate(samples=n, bins=len(observed), statistic=float(result.statistic),
                       p_value=float(result.pvalue) if math.isfinite(result.pvalue) else 0.0,
                       alpha=alpha)
