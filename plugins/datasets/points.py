"""2-D point datasets with known densities: rings, olympics, checkerboard.

The distribution-smoothing paper's manifold examples. `rings` is one ring made
by rotating N(1, 0.01^2) around the origin: the radius is normal, the angle
uniform. `olympics` is five such rings in the Olympic layout (three above, two
below, interlocking). `checkerboard` is uniform on the 8 dark squares of a 4x4
board on [-2, 2]^2. All three have their density in closed form (`log_prob`),
so the density task reports the true NLL beside the models': the floor no
model can beat.

Points are generated from `seed` (train and test from different streams), so
every machine sees the same data without shipping any.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import ClassVar

import torch

from arbench import Dataset, Param

RADIUS, RADIAL_STD = 1.0, 0.01
# Olympic layout: a top row of three rings, a bottom row of two between them.
OLYMPIC_CENTRES = ((-2.2, 0.5), (0.0, 0.5), (2.2, 0.5), (-1.1, -0.5), (1.1, -0.5))
SPLIT_STREAMS = {"train": 0, "test": 1, "validation": 2}


class Points(Dataset):
    """Points ``(N, 2)`` as float tensors; `log_prob` is the true density in nats;
    `plot_extent` ``(x0, x1, y0, y1)`` is the box the density plots show."""

    modality: ClassVar[str] = "points"
    plot_extent: ClassVar[tuple[float, float, float, float]]
    shape = (2,)
    num_levels = None
    class Params(Dataset.Params):
        n_train: int = Param(20000, "train points", ge=1)
        n_validation: int = Param(5000, "validation points", ge=1)
        n_test: int = Param(5000, "test points", ge=1)
        seed: int = Param(0, "seed of the draws", ge=0)

    params: Params

    def load(self, split: str) -> torch.Tensor:
        self.check_split(split)
        # one random stream per (seed, split); seed 0's train and test are what they were
        # before the validation split existed (the shipped models were trained on them)
        generator = torch.Generator().manual_seed(3 * self.params.seed + SPLIT_STREAMS[split])
        p = self.params
        return self.draw({"train": p.n_train, "validation": p.n_validation, "test": p.n_test
                          }[split], generator)

    @abstractmethod
    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """`n` points ``(n, 2)`` from the true distribution."""

    @abstractmethod
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """The true log density of ``x (B, 2)`` in nats, ``(B,)``."""


def ring_points(n: int, centre: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """`n` points of a ring around `centre`: radius N(1, 0.01^2), uniform angle."""
    radius = RADIUS + RADIAL_STD * torch.randn(n, generator=generator, dtype=torch.float64)
    angle = 2 * math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
    points = torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1)
    return (points + torch.tensor(centre, dtype=torch.float64)).float()


def ring_log_prob(x: torch.Tensor, centre: tuple[float, float]) -> torch.Tensor:
    """log N(r; 1, 0.01^2) - log(2 pi r) at r = |x - centre|: the polar change of variables
    (the mass of negative radii, 100 standard deviations away, is ignored)."""
    r = (x.double() - torch.tensor(centre, dtype=torch.float64, device=x.device)).norm(dim=1)
    log_radial = (-0.5 * ((r - RADIUS) / RADIAL_STD) ** 2
                  - math.log(RADIAL_STD * math.sqrt(2 * math.pi)))
    result: torch.Tensor = log_radial - torch.log(2 * math.pi * r)
    return result


class Rings(Points):
    """One ring of radius N(1, 0.01^2) around the origin."""

    plot_extent = (-1.5, 1.5, -1.5, 1.5)

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return ring_points(n, (0.0, 0.0), generator)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return ring_log_prob(x, (0.0, 0.0))


class Olympics(Points):
    """Five rings in the Olympic layout, each drawn with probability 1/5."""

    plot_extent = (-3.5, 3.5, -1.75, 1.75)

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        which = torch.randint(len(OLYMPIC_CENTRES), (n,), generator=generator)
        points = torch.empty(n, 2)
        for index, centre in enumerate(OLYMPIC_CENTRES):
            chosen = which == index
            points[chosen] = ring_points(int(chosen.sum()), centre, generator)
        return points

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        per_ring = torch.stack([ring_log_prob(x, centre) for centre in OLYMPIC_CENTRES])
        return per_ring.logsumexp(0) - math.log(len(OLYMPIC_CENTRES))


class Checkerboard(Points):
    """Uniform on the 8 squares of [-2, 2]^2 where floor(x) + floor(y) is even."""

    plot_extent = (-2.25, 2.25, -2.25, 2.25)

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        x = 4 * torch.rand(n, generator=generator) - 2
        row = torch.rand(n, generator=generator) + 2 * torch.randint(2, (n,), generator=generator)
        y = row - 2 + (x.floor() % 2)  # shift odd columns up by one square
        return torch.stack([x, y], dim=1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        inside = (x.abs() <= 2).all(dim=1) & ((x.floor().sum(dim=1) % 2) == 0)
        density = torch.full((x.shape[0],), -math.log(8.0), dtype=torch.float64, device=x.device)
        return density.masked_fill(~inside, -math.inf)
