"""Conditions a task hands to `Sampler.sample(condition=...)`.

Values are continuous, in data units (the model's `levels`). A sampler that can
serve "anything differentiable" needs only a `Constraint`: `log_likelihood` and
`project` (PnF adds the first's gradient to the prior's and applies the second
after each step). `Noisy` is an observation for denoisers, not a constraint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch


@runtime_checkable
class Constraint(Protocol):
    """What a conditional sampler needs from a condition, e.g. a task's own::

        @dataclass
        class Clipped:
            bound: float
            def log_likelihood(self, x, sigma): return x.new_zeros(x.shape[0])
            def project(self, x): return x.clamp(-self.bound, self.bound)
    """

    def log_likelihood(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """log p(condition | x) per example ``(B,)`` at noise level `sigma`, differentiable."""
        ...

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """`x` moved onto the set the condition allows (hard constraints); else `x`."""
        ...


@dataclass
class Observed:
    """Hard constraint (super-resolution, inpainting): ``x[mask] == values[mask]``.

    Samplers see only what is observed: the hidden entries of `values` (where `mask`
    is False) are set to 0 here, whatever the task passed, so a sampler cannot read
    the ground truth a task scores against.
    """

    mask: torch.Tensor  # bool, (B, *shape)
    values: torch.Tensor  # float, (B, *shape); 0 at hidden entries

    def __post_init__(self) -> None:
        self.values = self.values.where(self.mask, self.values.new_zeros(()))

    def log_likelihood(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """0: a hard constraint adds no likelihood term; `project` enforces it."""
        return x.new_zeros(x.shape[0])

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """`x` with the observed entries put back."""
        return x.where(~self.mask, self.values)


@dataclass
class Noisy:
    """Denoising: the sampler gets ``values = x + sigma * eps`` and returns its estimate of x."""

    values: torch.Tensor  # float, (B, *shape)
    sigma: float


@dataclass
class Mixture:
    """Soft constraint (separation): the sources, stacked on axis 1, sum to `mixture`.

    log p(mixture | x) = -gamma/2 |sum_s x_s - mixture|^2 with gamma = weight / sigma^2,
    so the Langevin step eta * grad = delta * weight * (mixture - sum_s x_s).
    """

    mixture: torch.Tensor  # float, (B, *source_shape)
    weight: float = 1.0

    def log_likelihood(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """-gamma/2 |sum_s x_s - mixture|^2 per example, gamma = weight / sigma^2."""
        residual = (x.sum(dim=1) - self.mixture).flatten(1)
        return -0.5 * (self.weight / sigma**2) * (residual**2).sum(dim=1)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """`x` unchanged: a soft constraint moves samples only through its likelihood."""
        return x


Condition = Observed | Mixture | Noisy | Constraint
"""What `Sampler.sample` may be given: a built-in condition or any `Constraint`."""
