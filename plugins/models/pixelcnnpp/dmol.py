"""The discretized mixture of logistics (DMoL) of PixelCNN++ over RGB pixels.

Per pixel the network gives M mixture logits and, for each channel and
component, a mean, a log-scale and (three per component) the linear
coefficients of Salimans et al.: green's mean moves with red's value, blue's
with red's and green's, so one network call gives the joint of a pixel's
channels. A channel value is one of K levels at ``-1 + 2k / (K - 1)``; level k
gets the logistic mass between the midpoints to its neighbours, the first and
last levels the tails, so the K probabilities sum to one exactly.

Deviation from the original: the bin mass is computed in log space with one
stable formula (`log_sigmoid_diff`) instead of its fall-back to the density at
the bin centre, so the probabilities sum to one to rounding error (tested).
Grey images (one channel) use the same layout with no coefficients.

The same parameters serve PnF's smoothed likelihood (`smoothed_log_prob`):
each channel's K-bin distribution convolved with N(0, sigma^2), the
binned-DMoL convolution of REFERENCE.md, with the means conditioned on the
noisy values of the pixel's earlier channels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LOG_SCALE_MIN = -7.0


def params_per_pixel(channels: int, mixtures: int) -> int:
    """Network outputs per pixel: logits, and per channel a mean and log-scale, plus the
    coefficients (``channels * (channels - 1) / 2`` per component)."""
    return mixtures * (1 + 2 * channels + channels * (channels - 1) // 2)


@dataclass
class Mixture:
    """A DMoL's parameters: ``logits (B, M, H, W)``; ``means``, ``log_scales`` ``(B, C, M,
    H, W)``; ``coeffs (B, C*(C-1)/2, M, H, W)`` in (-1, 1)."""

    logits: torch.Tensor
    means: torch.Tensor
    log_scales: torch.Tensor
    coeffs: torch.Tensor

    @classmethod
    def from_output(cls, out: torch.Tensor, channels: int) -> Mixture:
        """Split the network's ``(B, params_per_pixel, H, W)`` output."""
        n_coeffs = channels * (channels - 1) // 2
        mixtures = out.shape[1] // (1 + 2 * channels + n_coeffs)
        b, _, h, w = out.shape
        logits, rest = out[:, :mixtures], out[:, mixtures:].reshape(b, -1, mixtures, h, w)
        means, log_scales, coeffs = rest.split([channels, channels, n_coeffs], dim=1)
        return cls(logits, means, log_scales.clamp(min=LOG_SCALE_MIN), torch.tanh(coeffs))

    def at(self, i: int, j: int) -> Mixture:
        """The parameters of pixel (i, j) alone (spatial size 1x1)."""
        return Mixture(*(t[..., i:i + 1, j:j + 1] for t in
                         (self.logits, self.means, self.log_scales, self.coeffs)))

    def conditioned_means(self, values: torch.Tensor) -> torch.Tensor:
        """Each channel's means given the pixel's earlier channels ``values (B, C, H, W)``
        (data units): ``(B, C, M, H, W)``."""
        channels = self.means.shape[1]
        shifted = [self.means[:, 0]]
        k = 0
        for c in range(1, channels):
            mean = self.means[:, c]
            for earlier in range(c):
                mean = mean + self.coeffs[:, k] * values[:, earlier, None]
                k += 1
            shifted.append(mean)
        return torch.stack(shifted, dim=1)


def log_sigmoid_diff(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """log(sigmoid(high) - sigmoid(low)) for low < high, stable in both tails (either may
    be infinite): the difference is taken on the side where both logistics are small."""
    flip = (low + high) > 0
    low, high = torch.where(flip, -high, low), torch.where(flip, -low, high)
    log_low, log_high = F.logsigmoid(low), F.logsigmoid(high)
    return log_high + torch.log(-torch.expm1((log_low - log_high).clamp(max=-1e-12)))


def _bin_log_prob(values: torch.Tensor, levels: torch.Tensor, means: torch.Tensor,
                  log_scales: torch.Tensor, num_levels: int) -> torch.Tensor:
    """log P(level) of a discretized logistic, broadcast over means; `levels` long."""
    half_bin = 1.0 / (num_levels - 1)
    inv_scale = torch.exp(-log_scales)
    centred = values - means
    low = torch.where(levels == 0, -math.inf, inv_scale * (centred - half_bin))
    high = torch.where(levels == num_levels - 1, math.inf, inv_scale * (centred + half_bin))
    return log_sigmoid_diff(low, high)


def log_prob(mixture: Mixture, levels: torch.Tensor, num_levels: int,
             given: torch.Tensor | None = None) -> torch.Tensor:
    """log p of each pixel of ``levels (B, C, H, W)``: ``(B, H, W)`` in nats. The means
    follow the pixel's earlier channels' `given` values (default: the levels' own values;
    a noise-conditioned model passes the noisy ones it was fed)."""
    values = levels.to(mixture.means.dtype) * (2 / (num_levels - 1)) - 1
    means = mixture.conditioned_means(values if given is None else given)
    per_channel = _bin_log_prob(values[:, :, None], levels[:, :, None], means,
                                mixture.log_scales, num_levels)
    return torch.logsumexp(torch.log_softmax(mixture.logits, dim=1) + per_channel.sum(1), dim=1)


def level_log_probs(mixture: Mixture, values: torch.Tensor, num_levels: int) -> torch.Tensor:
    """log P(level k) of every channel and component, ``(B, C, M, H, W, K)``, with the means
    conditioned on ``values (B, C, H, W)``."""
    levels = torch.arange(num_levels, device=values.device)
    grid = levels.to(values.dtype) * (2 / (num_levels - 1)) - 1
    means = mixture.conditioned_means(values)[..., None]
    return _bin_log_prob(grid, levels, means, mixture.log_scales[..., None], num_levels)


def image_logits(mixture: Mixture, levels: torch.Tensor, num_levels: int) -> torch.Tensor:
    """Logits ``(B, C, H, W, K)`` of every channel of every pixel given the pixel's earlier
    channels' ``levels (B, C, H, W)`` (its own and later ones ignored): the levels'
    probabilities under each component, weighted by the component's posterior given the
    earlier channels. What scores or iterates (Jacobi) every position in one call."""
    values = levels.to(mixture.means.dtype) * (2 / (num_levels - 1)) - 1
    per_level = level_log_probs(mixture, values, num_levels)  # (B, C, M, H, W, K)
    index = levels[:, :, None, :, :, None].expand(-1, -1, per_level.shape[2], -1, -1, 1)
    observed = per_level.gather(5, index)[..., 0]  # (B, C, M, H, W)
    earlier = torch.cat([torch.zeros_like(observed[:, :1]), observed[:, :-1].cumsum(1)], 1)
    weights = torch.log_softmax(mixture.logits, dim=1)[:, None] + earlier
    return torch.logsumexp(weights[..., None] + per_level, dim=2)


def channel_logits(mixture: Mixture, pixel: torch.Tensor, channel: int,
                   num_levels: int) -> torch.Tensor:
    """Logits ``(B, K)`` of one channel of a pixel given its earlier channels' levels
    ``pixel (B, C)``: `image_logits` of the pixel's own 1x1 `mixture`."""
    return image_logits(mixture, pixel[:, :, None, None], num_levels)[:, channel, 0, 0]


def smoothed_log_prob(mixture: Mixture, noisy: torch.Tensor, sigma: float,
                      num_levels: int) -> torch.Tensor:
    """log p_sigma of each pixel of continuous ``noisy (B, C, H, W)``: every channel's
    K-level distribution convolved with N(0, sigma^2); ``(B, H, W)``."""
    if sigma <= 0:
        raise ValueError(f"the smoothed likelihood needs sigma > 0, got {sigma}")
    grid = torch.linspace(-1, 1, num_levels, dtype=noisy.dtype, device=noisy.device)
    log_gauss = (-0.5 * ((noisy[:, :, None, :, :, None] - grid) / sigma) ** 2
                 - math.log(sigma) - 0.5 * math.log(2 * math.pi))
    per_channel = torch.logsumexp(level_log_probs(mixture, noisy, num_levels) + log_gauss, -1)
    return torch.logsumexp(torch.log_softmax(mixture.logits, dim=1) + per_channel.sum(1), dim=1)


def sample(mixture: Mixture, num_levels: int, generator: torch.Generator | None = None,
           sigma: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """One draw per pixel: a component, then each channel's level from its logistic (snapped
    to its bin) given the pixel's earlier channels. Returns the levels ``(B, C, H, W)``
    (long) and the values the means were conditioned on: the levels' values plus
    ``sigma * N(0, 1)`` (sigma 0: the levels' values; > 0: a noisy draw, as a model of
    smoothed data is fed)."""
    logits = mixture.logits.movedim(1, -1)
    flat = torch.softmax(logits.reshape(-1, logits.shape[-1]).double(), dim=-1)
    component = torch.multinomial(flat, 1, generator=generator).view(*logits.shape[:-1])
    pick = component[:, None, None]  # (B, 1, 1, H, W)
    b, channels, _, h, w = mixture.means.shape
    device = mixture.means.device
    levels = torch.zeros(b, channels, h, w, dtype=torch.long, device=device)
    given = torch.zeros(b, channels, h, w, dtype=mixture.means.dtype, device=device)
    for c in range(channels):
        mean = mixture.conditioned_means(given)[:, c:c + 1].gather(2, pick)[:, 0, 0]
        log_scale = mixture.log_scales[:, c:c + 1].gather(2, pick)[:, 0, 0]
        u = torch.rand(mean.shape, generator=generator, device=device,
                       dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
        drawn = mean.double() + torch.exp(log_scale.double()) * (torch.log(u) - torch.log1p(-u))
        level = torch.round((drawn.clamp(-1, 1) + 1) * ((num_levels - 1) / 2)).long()
        levels[:, c] = level
        value = level.to(given.dtype) * (2 / (num_levels - 1)) - 1
        if sigma > 0:
            value = value + sigma * torch.randn(value.shape, generator=generator,
                                                device=device, dtype=value.dtype)
        given[:, c] = value
    return levels, given
