"""The 2-D datasets: seeded, and their closed-form densities are normalised and right."""

from __future__ import annotations

import math

import pytest
import torch

from arbench_plugins.datasets.points import OLYMPIC_CENTRES, Checkerboard, Olympics, Rings


def grid_integral(dataset, extent: tuple[float, float, float, float], step: float) -> float:
    x0, x1, y0, y1 = extent
    xs = torch.arange(x0, x1, step, dtype=torch.float64) + step / 2
    ys = torch.arange(y0, y1, step, dtype=torch.float64) + step / 2
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
    return sum(dataset.log_prob(chunk).exp().sum().item()
               for chunk in grid.split(1 << 20)) * step**2


@pytest.mark.parametrize("dataset, extent, step", [
    (Rings(), (-1.1, 1.1, -1.1, 1.1), 0.002),
    (Olympics(), (-3.3, 3.3, -1.6, 1.6), 0.003),
    (Checkerboard(), (-2.5, 2.5, -2.5, 2.5), 0.01),
])
def test_true_densities_integrate_to_one(dataset, extent, step):
    assert grid_integral(dataset, extent, step) == pytest.approx(1.0, abs=5e-3)


def test_splits_are_seeded_and_distinct():
    assert torch.equal(Rings().load("train"), Rings().load("train"))
    assert not torch.equal(Rings().load("test"), Rings().load("train")[:5000])
    assert not torch.equal(Rings(seed=1).load("test"), Rings().load("test"))
    assert not torch.equal(Rings().load("validation"), Rings().load("test"))
    assert not torch.equal(Rings().load("validation"), Rings(seed=1).load("train")[:5000])
    with pytest.raises(ValueError, match="splits 'train', 'validation' and 'test'"):
        Rings().load("val")


def test_rings_have_the_papers_radius_and_entropy():
    points = Rings().load("test")
    radius = points.double().norm(dim=1)
    assert radius.mean().item() == pytest.approx(1.0, abs=1e-3)
    assert radius.std().item() == pytest.approx(0.01, rel=0.05)
    # entropy of N(1, 0.01^2) in r plus E[log 2 pi r]: the NLL floor in nats
    floor = 0.5 * math.log(2 * math.pi * math.e * 1e-4) + math.log(2 * math.pi)
    assert -Rings().log_prob(points).mean().item() == pytest.approx(floor, abs=0.03)


def test_olympics_draws_every_ring_equally_and_checkerboard_only_dark_squares():
    points = Olympics().load("train")
    centres = torch.tensor(OLYMPIC_CENTRES)
    nearest = torch.cdist(points, centres).sub(1).abs().argmin(dim=1)
    shares = torch.bincount(nearest, minlength=5).double() / len(points)
    assert torch.allclose(shares, torch.full((5,), 0.2, dtype=torch.float64), atol=0.01)
    board = Checkerboard().load("test")
    assert torch.isfinite(Checkerboard().log_prob(board)).all()
    assert (board.abs() <= 2).all()
