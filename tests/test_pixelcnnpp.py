"""PixelCNN++: the DMoL is a normalised distribution its sampler follows, the network is
causal, its row-band cache exact, and both models train through `arbench train` on tiny
real-format files."""

import itertools
import math

import numpy as np
import pytest
import torch
from conftest import run_cli, shipped
from PIL import Image

from arbench_plugins.datasets.images import ImageFolder
from arbench_plugins.models.pixelcnnpp import dmol
from arbench_plugins.models.pixelcnnpp.cache import RowBands
from arbench_plugins.models.pixelcnnpp.net import PixelCNNPPNet
from arbench_plugins.samplers.ancestral import Ancestral, naive_sample


def random_mixture(channels: int, mixtures: int, seed: int = 0) -> dmol.Mixture:
    generator = torch.Generator().manual_seed(seed)
    out = torch.randn(1, dmol.params_per_pixel(channels, mixtures), 1, 1, generator=generator,
                      dtype=torch.float64)
    return dmol.Mixture.from_output(2 * out, channels)


def test_the_dmol_probabilities_of_a_pixel_sum_to_one():
    levels = 8  # all 8^3 joint values of an RGB pixel
    mixture = random_mixture(3, 4)
    every = torch.tensor(list(itertools.product(range(levels), repeat=3)))
    pixels = every.view(-1, 3, 1, 1)
    expanded = dmol.Mixture(*(t.expand(len(pixels), *t.shape[1:]) for t in (
        mixture.logits, mixture.means, mixture.log_scales, mixture.coeffs)))
    total = dmol.log_prob(expanded, pixels, levels).exp().sum()
    assert total.item() == pytest.approx(1.0, abs=1e-12)
    # Each channel's 256 bins given any earlier values, as the smoothed likelihood uses them.
    given = torch.rand(1, 3, 1, 1, dtype=torch.float64) * 2 - 1
    sums = dmol.level_log_probs(random_mixture(3, 10, seed=1), given, 256).exp().sum(-1)
    assert torch.allclose(sums, torch.ones_like(sums), atol=1e-12)


def test_dmol_samples_follow_its_probabilities():
    levels, n = 4, 40000
    mixture = random_mixture(3, 3, seed=2)
    many = dmol.Mixture(*(t.expand(n, *t.shape[1:]) for t in (
        mixture.logits, mixture.means, mixture.log_scales, mixture.coeffs)))
    drawn, given = dmol.sample(many, levels, torch.Generator().manual_seed(0))
    assert torch.equal(given, drawn.double() * (2 / (levels - 1)) - 1)
    codes = (drawn.view(n, 3) * torch.tensor([16, 4, 1])).sum(1)
    frequency = torch.bincount(codes, minlength=64).double() / n
    every = torch.tensor(list(itertools.product(range(levels), repeat=3))).view(-1, 3, 1, 1)
    expanded = dmol.Mixture(*(t[:1].expand(64, *t.shape[1:]) for t in (
        many.logits, many.means, many.log_scales, many.coeffs)))
    expected = dmol.log_prob(expanded, every, levels).exp().view(-1)
    stderr = (expected * (1 - expected) / n).sqrt()
    assert ((frequency - expected).abs() <= 5 * stderr + 1e-9).all()


def test_channel_conditionals_multiply_to_the_pixels_probability():
    mixture = random_mixture(3, 5, seed=4)
    pixel = torch.tensor([[200, 17, 90]])
    chain = sum(torch.log_softmax(dmol.channel_logits(mixture, pixel, c, 256), -1)[0, pixel[0, c]]
                for c in range(3))
    joint = dmol.log_prob(mixture, pixel.view(1, 3, 1, 1), 256)[0, 0, 0]
    assert float(chain) == pytest.approx(float(joint), abs=1e-9)


def test_the_smoothed_dmol_is_a_density_that_integrates_to_one():
    mixture = random_mixture(1, 3, seed=3)
    grid = torch.linspace(-3, 3, 6001, dtype=torch.float64)
    values = grid.view(-1, 1, 1, 1)
    expanded = dmol.Mixture(*(t.expand(len(grid), *t.shape[1:]) for t in (
        mixture.logits, mixture.means, mixture.log_scales, mixture.coeffs)))
    density = dmol.smoothed_log_prob(expanded, values, 0.2, 16).exp().view(-1)
    assert torch.trapezoid(density, grid).item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("cond", [0, 4])
def test_pixel_ij_is_predicted_from_the_pixels_before_it_only(cond):
    torch.manual_seed(0)
    net = PixelCNNPPNet([3, 8, 8], 256, nr_resnet=1, nr_filters=8, mixtures=2, dropout=0.0,
                        cond_channels=cond).double()
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    out = net(x, torch.ones(1, cond, 1, 1, dtype=torch.float64) if cond else None)
    for i, j in [(0, 0), (0, 5), (3, 0), (4, 4), (7, 7)]:
        (grad,) = torch.autograd.grad(out[0, :, i, j].sum(), x, retain_graph=True)
        seen = grad[0].abs().sum(0) > 0
        before = torch.arange(64).view(8, 8) < i * 8 + j
        assert not (seen & ~before).any(), f"pixel {(i, j)} sees itself or a later pixel"
        assert (i == 0 or seen[i - 1, j]) and (j == 0 or seen[i, j - 1])  # above, left


@pytest.mark.parametrize("cond", ["none", "vector", "map"])
def test_row_bands_give_the_whole_networks_mixture_at_every_pixel(cond):
    torch.manual_seed(0)
    size = 16  # two rows per scale are a band, not the whole image, at every scale
    net = PixelCNNPPNet([3, size, size], 256, nr_resnet=1, nr_filters=8, mixtures=2,
                        dropout=0.0, cond_channels=0 if cond == "none" else 4).eval()
    x = torch.rand(2, 3, size, size) * 2 - 1
    shape = {"none": None, "vector": (2, 4, 1, 1), "map": (2, 4, size, size)}[cond]
    condition = None if shape is None else torch.randn(shape)
    with torch.no_grad():
        full = dmol.Mixture.from_output(net(x, condition), 3)
    bands = RowBands(net, 2, condition)
    for i in range(size):
        for j in range(size):
            band, whole = bands.mixture(i, j), full.at(i, j)
            for mine, theirs in zip((band.logits, band.means, band.log_scales, band.coeffs),
                                    (whole.logits, whole.means, whole.log_scales, whole.coeffs),
                                    strict=True):
                torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-5)
            bands.set_pixel(i, j, x[:, :, i, j])


def write_images(folder, count: int = 40, size: int = 8) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(count):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{k:03d}.png")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    write_images(folder)
    dataset = ImageFolder(data_dir=str(folder), size=8)
    dataset.name = "imagefolder"
    return folder, dataset


def test_pixelcnnpp_trains_scores_and_samples(images, tmp_path):
    folder, dataset = images
    out = tmp_path / "pp.pt"
    result = run_cli(["train", "pixelcnn++", "--dataset", "imagefolder", "--data-dir",
                          str(folder), "--set", "imagefolder.size=8", "--set", "preset=tiny",
                          "--set", "epochs=2", "--out", str(out)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    model = shipped("pixelcnn++", dataset, checkpoint=str(out))
    test = dataset.load("test")
    bits = -model.log_prob(test).mean().item() / (dataset.dims * math.log(2))
    assert 6 < bits < 12  # near uniform (8 bits/dim) after two epochs on noise images
    cached = Ancestral().sample(model, dataset, 3, None, torch.Generator().manual_seed(0))
    naive = naive_sample(model, dataset, 3, torch.Generator().manual_seed(0))
    assert cached.nfe == naive.nfe == 192 and cached.samples.shape == (3, 3, 8, 8)
    assert torch.equal(cached.samples, naive.samples)
    noisy = (model.levels[test] + 0.1 * torch.randn(test.shape)).requires_grad_()
    (grad,) = torch.autograd.grad(model.smoothed_log_prob(noisy, 0.1).sum(), noisy)
    assert grad.shape == test.shape and torch.isfinite(grad).all()


def test_smoothed_pixelcnnpp_pair_trains_and_bounds_the_likelihood(images, tmp_path):
    folder, dataset = images
    out = tmp_path / "pair.pt"
    result = run_cli(["train", "smoothed-pixelcnn++", "--dataset", "imagefolder",
                          "--data-dir", str(folder), "--set", "imagefolder.size=8",
                          "--set", "preset=tiny", "--set", "steps=4", "--set", "eval_every=2",
                          "--out", str(out)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    pair = shipped("smoothed-pixelcnn++", dataset, checkpoint=str(out))
    generator = torch.Generator().manual_seed(0)
    noisy = pair.sample_noisy(2, generator)
    clean = pair.sample_clean(noisy, generator)
    assert noisy.shape == clean.shape == (2, 3, 8, 8) and clean.dtype == torch.long
    # An ELBO is at most the log-probability of the best possible model (0 nats).
    assert (pair.elbo(dataset.load("test"), 2, generator) < 0).all()
