"""Jacobi decoding: ancestral sampling's samples, bit for bit at one seed, for every model
it serves, in fewer network calls where the model lets the fixed point travel fast."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from conftest import shipped

from arbench.errors import Incompatible
from arbench.plugin.conditions import Mixture, Observed
from arbench_plugins.datasets.digits import Digits
from arbench_plugins.models.pixelcnnpp.model import PixelCNNPP, SigmaPixelCNNPP
from arbench_plugins.samplers.ancestral import Ancestral
from arbench_plugins.samplers.jacobi import Jacobi


@pytest.fixture(scope="module")
def digits() -> Digits:
    dataset = Digits()
    dataset.name = "digits"
    return dataset


def load(name: str, dataset):
    """The shipped checkpoint of model `name` on `dataset`, as a cell loads it."""
    return shipped(name, dataset)


def tiny_pixelcnnpp() -> tuple[PixelCNNPP, SimpleNamespace]:
    """A random PixelCNN++ on 3x4x4 images of 256 levels (DMoL, three channels)."""
    torch.manual_seed(0)
    images = SimpleNamespace(name="tiny", shape=(3, 4, 4), dims=48, num_levels=256)
    net = SigmaPixelCNNPP([3, 4, 4], 256, embed=4, nr_resnet=1, nr_filters=8, mixtures=2,
                          dropout=0.0)
    return PixelCNNPP(net.eval(), images), images


def jacobi(window: int = 0) -> Jacobi:
    return Jacobi(window=window)


def both(model, dataset, n: int, seed: int = 0, window: int = 0):
    exact = Ancestral().sample(model, dataset, n, None, torch.Generator().manual_seed(seed))
    fast = jacobi(window).sample(model, dataset, n, None, torch.Generator().manual_seed(seed))
    return exact, fast


@pytest.mark.parametrize("name", ["pixelcnn", "pixelcnn-smooth"])
def test_jacobi_draws_ancestral_samples_on_digits_in_fewer_calls(digits, name):
    exact, fast = both(load(name, digits), digits, 32)
    assert torch.equal(fast.samples, exact.samples)
    assert fast.diagnostics["converged"] == 1.0
    calls = fast.diagnostics
    assert fast.nfe == calls["calls_max"] == max(calls["calls_per_example"])
    assert calls["calls_mean"] <= fast.nfe < exact.nfe == 64


def test_jacobi_draws_ancestral_samples_on_audio_with_and_without_a_window():
    from arbench_plugins.datasets.audio import Piano

    piano = Piano()
    piano.name = "piano"
    wavenet = load("wavenet", piano)
    clips = SimpleNamespace(dims=96, shape=(96,), num_levels=256)
    exact, fast = both(wavenet, clips, 3, seed=1)
    assert torch.equal(fast.samples, exact.samples)
    windowed = jacobi(16).sample(wavenet, clips, 3, None, torch.Generator().manual_seed(1))
    assert torch.equal(windowed.samples, exact.samples)
    assert windowed.diagnostics["window"] == 16 and fast.nfe <= 96


def test_jacobi_draws_ancestral_samples_of_pixelcnnpp_in_its_channel_order():
    model, images = tiny_pixelcnnpp()
    exact, fast = both(model, images, 4)
    assert torch.equal(fast.samples, exact.samples)
    windowed = jacobi(5).sample(model, images, 4, None, torch.Generator().manual_seed(0))
    assert torch.equal(windowed.samples, exact.samples)


def test_pixelcnnpp_logits_give_its_log_likelihood():
    model, _ = tiny_pixelcnnpp()
    x = torch.randint(0, 256, (2, 3, 4, 4), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        logits = model.logits(x)
        chain = torch.log_softmax(logits.double(), -1).gather(-1, x.view(2, -1, 1)).sum((1, 2))
        torch.testing.assert_close(chain, model.log_prob(x).double(), atol=1e-3, rtol=1e-5)


def test_a_budget_below_the_fixed_point_stops_early_and_says_so(digits):
    model = load("pixelcnn", digits)
    full = jacobi().sample(model, digits, 16, None, torch.Generator().manual_seed(0))
    short = jacobi().sample(model, digits, 16, 3, torch.Generator().manual_seed(0))
    assert short.nfe == 3 and short.diagnostics["converged"] < 1.0
    assert None in short.diagnostics["calls_per_example"]
    assert not torch.equal(short.samples, full.samples)
    with pytest.raises(Incompatible, match="at most D=64"):
        jacobi().nll(model, digits.load("test")[:2], 16)


def test_observed_values_are_kept_and_the_rest_follow_the_models_conditionals(digits):
    model = load("pixelcnn", digits)
    truth = digits.continuous(digits.load("test")[:8])
    mask = torch.zeros_like(truth, dtype=torch.bool)
    mask[..., :4, :] = True  # the top half is observed
    condition = Observed(mask=mask, values=truth)
    drawn = jacobi().sample(model, digits, 8, None, torch.Generator().manual_seed(0),
                            condition=condition)
    assert torch.equal(drawn.samples[mask], truth[mask])
    assert drawn.diagnostics["converged"] == 1.0 and drawn.nfe < 64


def test_jacobi_refuses_what_it_cannot_solve_exactly(digits):
    from arbench_plugins.datasets.points import Rings

    rings = Rings()
    rings.name = "rings"
    with pytest.raises(Incompatible, match="CausalLogits"):
        jacobi().sample(load("made-mol", rings), rings, 4, None, torch.Generator())
    separation = Mixture(mixture=torch.zeros(2, 1, 8, 8))
    with pytest.raises(Incompatible, match="observed positions"):
        jacobi().sample(load("pixelcnn", digits), digits, 2, None, torch.Generator(),
                        condition=separation)
