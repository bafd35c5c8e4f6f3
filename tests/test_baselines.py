"""Model-free baselines: spline interpolation and the mixture-as-estimate separation reference."""

from __future__ import annotations

import pytest
import torch

from arbench.errors import Incompatible
from arbench.plugin.conditions import Mixture, Observed
from arbench.plugin.contracts import Dataset
from arbench_plugins.samplers.baselines import MixtureBaseline, Spline


class TwoSources(Dataset):
    shape = (2, 40)
    sources = ("piano", "voice")

    def load(self, split: str) -> torch.Tensor:
        return torch.zeros(1, *self.shape)


def sample(sampler, condition, n: int) -> torch.Tensor:
    out = sampler.sample(None, TwoSources(), n, None, torch.Generator(), condition=condition)
    assert out.nfe == 0
    return out.samples


def smooth_image(height: int, width: int) -> torch.Tensor:
    i = torch.arange(height, dtype=torch.float64)[:, None]
    j = torch.arange(width, dtype=torch.float64)[None, :]
    return torch.sin(0.2 * i + 0.3) * torch.cos(0.15 * j) + 0.01 * i * j / width


def test_spline_reproduces_a_cubic_in_1d_superresolution_and_keeps_observations() -> None:
    t = torch.arange(64, dtype=torch.float64)
    signal = torch.stack([0.5 - 0.1 * t + 0.02 * t**2 - 3e-4 * t**3, 1 + 0.001 * t**3])
    mask = torch.zeros_like(signal, dtype=torch.bool)
    mask[:, ::4] = True  # 4x; positions 61-63 lie past the last observation (extrapolated)
    values = signal.where(mask, torch.zeros(()))
    estimate = sample(Spline(), Observed(mask, values), n=2)
    assert estimate.shape == signal.shape and estimate.dtype == torch.float64
    assert torch.equal(estimate[mask], signal[mask])
    torch.testing.assert_close(estimate, signal, atol=1e-9, rtol=0)


def test_separable_spline_keeps_the_grid_and_reproduces_a_bilinear_image() -> None:
    i = torch.arange(16, dtype=torch.float64)[:, None]
    j = torch.arange(16, dtype=torch.float64)[None, :]
    image = (0.2 + 0.05 * i - 0.03 * j + 0.01 * i * j).expand(2, 1, 16, 16).float()
    mask = torch.zeros_like(image, dtype=torch.bool)
    mask[..., ::2, ::2] = True
    estimate = sample(Spline(), Observed(mask, image.where(mask, torch.zeros(()))), n=2)
    assert estimate.shape == image.shape and estimate.dtype == torch.float32
    assert torch.equal(estimate[..., ::2, ::2], image[..., ::2, ::2])
    torch.testing.assert_close(estimate, image, atol=1e-5, rtol=0)


def test_separable_spline_is_close_on_a_smooth_image() -> None:
    image = smooth_image(24, 24)[None, None]
    mask = torch.zeros_like(image, dtype=torch.bool)
    mask[..., ::2, ::2] = True
    estimate = sample(Spline(), Observed(mask, image), n=1)
    assert (estimate - image).abs().max() < 0.02


def test_spline_inpaints_a_centre_patch_of_a_smooth_image() -> None:
    image = smooth_image(32, 32)[None, None]
    mask = torch.ones_like(image, dtype=torch.bool)
    mask[..., 12:20, 12:20] = False
    estimate = sample(Spline(), Observed(mask, image.where(mask, torch.zeros(()))), n=1)
    assert torch.equal(estimate[mask], image[mask])
    patch_error = (estimate - image)[..., 12:20, 12:20].abs().max()
    assert patch_error < 0.05  # the patch itself spans about 1.0 in value


def test_spline_interpolates_each_channel_of_an_rgb_image_on_its_own() -> None:
    grey = smooth_image(16, 16)
    image = torch.stack([grey, 1 - grey, grey.t()])[None]  # (1, 3, 16, 16)
    mask = torch.zeros_like(image, dtype=torch.bool)
    mask[..., ::2, ::2] = True
    estimate = sample(Spline(), Observed(mask, image), n=1)
    for c in range(3):
        alone = sample(Spline(), Observed(mask[:, c:c + 1], image[:, c:c + 1]), n=1)
        assert torch.equal(estimate[:, c:c + 1], alone)


def test_mixture_baseline_returns_the_mixture_for_every_source() -> None:
    mixture = torch.randn(3, 40, generator=torch.Generator().manual_seed(0))
    estimate = sample(MixtureBaseline(), Mixture(mixture), n=3)
    assert estimate.shape == (3, 2, 40)
    for source in range(2):
        assert torch.equal(estimate[:, source], mixture)


def test_baselines_skip_a_condition_they_cannot_use() -> None:
    observed = Observed(torch.ones(1, 8, dtype=torch.bool), torch.zeros(1, 8))
    mixture = Mixture(torch.zeros(1, 40))
    for sampler, wrong in ((Spline(), mixture), (Spline(), None), (MixtureBaseline(), observed)):
        with pytest.raises(Incompatible, match="condition"):
            sample(sampler, wrong, n=1)


def test_inpainting_outside_the_observed_hull_falls_back_to_nearest_values() -> None:
    image = smooth_image(16, 16)[None, None]
    mask = torch.ones_like(image, dtype=torch.bool)
    mask[..., :3, :3] = False  # the corner lies outside the convex hull of the rest
    estimate = sample(Spline(), Observed(mask, image), n=1)
    assert torch.isfinite(estimate).all()
    assert torch.equal(estimate[mask], image[mask])
