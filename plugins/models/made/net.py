"""MADE with a mixture of logistics per dimension: an exact density over real vectors.

MADE (Germain et al., 2015) masks an MLP so that output d sees inputs 1..d-1
only; here output d gives the M mixture weights, means and log-scales of
p(x_d | x_<d), a mixture of logistics (the distribution-smoothing paper's 2-D
model). Stacking two vectors as ``[x~, x]`` makes one network a pair: its first
dimensions are p(x~), its last ones p(x | x~), as in the original code.

Sampling is ancestral: one network call per dimension.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MIN_LOG_SCALE = -9.0  # logistic scale >= 1.2e-4: far below the rings' 0.01 radial spread


def mol_log_prob(x: torch.Tensor, logits: torch.Tensor, means: torch.Tensor,
                 log_scales: torch.Tensor) -> torch.Tensor:
    """log sum_m softmax(logits)_m Logistic(x; means_m, exp(log_scales_m)); ``x (...)``,
    parameters ``(..., M)``; returns ``(...)`` in nats."""
    z = (x.unsqueeze(-1) - means) * torch.exp(-log_scales)
    log_pdf = -z - log_scales - 2 * F.softplus(-z)
    return (F.log_softmax(logits, dim=-1) + log_pdf).logsumexp(dim=-1)


def mol_sample(logits: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor,
               generator: torch.Generator) -> torch.Tensor:
    """One draw per leading index: a component from the weights, then its logistic
    (inverse CDF of a uniform). Parameters ``(B, M)``; returns ``(B,)``."""
    component = torch.multinomial(logits.softmax(-1), 1, generator=generator)
    mean, log_scale = means.gather(-1, component)[:, 0], log_scales.gather(-1, component)[:, 0]
    u = torch.rand(mean.shape, generator=generator, device=mean.device).clamp(1e-6, 1 - 1e-6)
    return mean + log_scale.exp() * (u.log() - (-u).log1p())


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 connectivity mask."""

    mask: torch.Tensor  # a buffer

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """p(x) = prod_d MoL(x_d; params_d(x_<d)) over ``x (B, dims)``.

    Input d has degree d (1..D); hidden units cycle over degrees 1..D-1 and see
    the units of lower or equal degree below them; output d sees hidden units of
    degree < d. Output 1 sees nothing: its mixture is a learned constant, p(x_1).
    """

    def __init__(self, dims: int, mixtures: int, hidden: int = 128, layers: int = 2) -> None:
        super().__init__()
        self.dims, self.mixtures = dims, mixtures
        below = torch.arange(1, dims + 1)
        blocks = []
        for _ in range(layers):
            degrees = 1 + torch.arange(hidden) % max(dims - 1, 1)
            blocks += [MaskedLinear(degrees[:, None] >= below[None, :]), nn.ReLU()]
            below = degrees
        self.body = nn.Sequential(*blocks)
        outputs = torch.arange(1, dims + 1).repeat_interleave(3 * mixtures)
        self.head = MaskedLinear(outputs[:, None] > below[None, :])

    def params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mixture logits, means and log-scales, each ``(B, D, M)``; one network call."""
        out = self.head(self.body(x)).view(x.shape[0], self.dims, 3, self.mixtures)
        logits, means, log_scales = out.unbind(2)
        return logits, means, log_scales.clamp(min=MIN_LOG_SCALE)

    def log_prob_per_dim(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x_d | x_<d) of ``x (B, D)`` in nats, ``(B, D)``."""
        return mol_log_prob(x, *self.params(x))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log density of ``x (B, D)`` in nats, ``(B,)``."""
        return self.log_prob_per_dim(x).sum(dim=1)

    def sample_dimension(self, x: torch.Tensor, d: int, generator: torch.Generator
                         ) -> torch.Tensor:
        """Draw x_d (0-based) of every row given its x_<d: one network call."""
        logits, means, log_scales = self.params(x)
        return mol_sample(logits[:, d], means[:, d], log_scales[:, d], generator)

    @torch.no_grad()
    def complete(self, x: torch.Tensor, generator: torch.Generator, start: int = 0,
                 stop: int | None = None) -> torch.Tensor:
        """A copy of ``x (B, D)`` with dimensions ``start..stop-1`` drawn in order given the
        ones before: one network call each (the defaults draw a whole sample)."""
        x = x.clone()
        for d in range(start, self.dims if stop is None else stop):
            x[:, d] = self.sample_dimension(x, d, generator)
        return x


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, sigma: float) -> torch.Tensor:
    """log N(x; mean, sigma^2 I) summed over the last dimension, ``(B,)``."""
    return (-0.5 * ((x - mean) / sigma) ** 2 - math.log(sigma * math.sqrt(2 * math.pi))).sum(-1)
