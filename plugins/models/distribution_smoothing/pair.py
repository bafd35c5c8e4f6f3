"""The smoothed pair of distribution smoothing (Meng et al., 2021): capability smoothed-pair.

Stage 1 fits p(x~) to smoothed data x~ = x + sigma * eps; stage 2 fits the
reverse model p(x | x~). Together they bound the likelihood of clean data:

    log p(x) >= E_q(x~|x) [log p(x~) - log q(x~|x) + log p(x|x~)],  q = N(x, sigma^2 I)

`SmoothedPair` is what the smoothing samplers need: `noisy_log_prob` (for
single-step denoising x~ + sigma^2 grad log p(x~)), `sample_noisy`,
`sample_clean` and `clean_log_prob`, plus the ELBO above. Discrete data (digits)
enter q as their continuous values, so the bound is on the probability of the
levels, in the same nats as an exact discrete model's.
"""

from __future__ import annotations

from abc import abstractmethod

import torch

from arbench import Model
from arbench_plugins.models.made.net import gaussian_log_prob


class SmoothedPair(Model):
    """p(x~) and p(x | x~) at one noise level `sigma` (data units)."""

    provides = frozenset({"smoothed-pair"})
    sigma: float

    @abstractmethod
    def noisy_log_prob(self, noisy: torch.Tensor) -> torch.Tensor:
        """log p(x~) of continuous ``(B, *shape)``, ``(B,)``, differentiable in x~."""

    @abstractmethod
    def sample_noisy(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` draws of x~ from p(x~), continuous ``(n, *shape)``; `dims` network calls."""

    @abstractmethod
    def clean_log_prob(self, x: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
        """log p(x | x~) per example, ``(B,)``; x as the dataset stores it."""

    @abstractmethod
    def sample_clean(self, noisy: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One x ~ p(x | x~) per row of ``noisy``, as the dataset stores it; `dims` calls."""

    @abstractmethod
    def continuous(self, x: torch.Tensor) -> torch.Tensor:
        """x as the dataset stores it -> values in data units (where q centres x~)."""

    @property
    @abstractmethod
    def dims(self) -> int:
        """Values per example: the network calls of one ancestral pass."""

    @torch.no_grad()
    def elbo(self, x: torch.Tensor, samples: int, generator: torch.Generator | None = None
             ) -> torch.Tensor:
        """The bound above per example in nats, ``(B,)``, averaged over `samples` draws of x~."""
        centre = self.continuous(x)
        total = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
        for _ in range(samples):
            eps = torch.randn(centre.shape, generator=generator, device=centre.device)
            noisy = centre + self.sigma * eps
            log_q = gaussian_log_prob(noisy.flatten(1), centre.flatten(1), self.sigma)
            total += (self.noisy_log_prob(noisy) - log_q + self.clean_log_prob(x, noisy)).double()
        return total / samples
