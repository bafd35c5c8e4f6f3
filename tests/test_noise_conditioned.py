"""Noise-conditioned models: smoothed likelihood, gradient, causality, shipped checkpoints."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch
from conftest import model_spec, shipped

from arbench.errors import Incompatible
from arbench.plugin.capabilities import CausalConditionals, require
from arbench.plugin.contracts import Dataset
from arbench.training.checkpoints import sidecar
from arbench_plugins.datasets.audio import Piano, PianoVoice, Voice
from arbench_plugins.datasets.digits import DigitGroups, Digits, DigitsHigh, DigitsLow
from arbench_plugins.models.pixelcnn.noise_conditioned import (
    NoiseConditionedPixelCNN,
    NoiseConditionedPixelCNNNet,
)
from arbench_plugins.models.pnf.noise_conditioned import (
    NoiseConditionedAR,
    PerSourcePriors,
    smoothed_log_prob_from_logits,
)
from arbench_plugins.models.wavenet.model import WaveNet, WaveNetNet

CPU = torch.device("cpu")


def tiny_wavenet(length: int = 24) -> WaveNet:
    torch.manual_seed(0)
    net = WaveNetNet(256, [length], channels=4, skip_channels=8, stacks=1, layers=3, embed=4)
    return WaveNet(net.double().eval(), Piano(clip_length=length))


def tiny_pixelcnn() -> NoiseConditionedPixelCNN:
    torch.manual_seed(0)
    net = NoiseConditionedPixelCNNNet(17, [1, 8, 8], channels=8, blocks=1, first_kernel=5, kernel=3,
                            embed=4)
    return NoiseConditionedPixelCNN(net.double().eval(), Digits())


def test_smoothed_log_prob_matches_a_direct_sum() -> None:
    torch.manual_seed(0)
    logits, x = torch.randn(2, 3, 4), torch.rand(2, 3) * 2 - 1
    levels, sigma = torch.linspace(-1, 1, 4), 0.3
    got = smoothed_log_prob_from_logits(logits, x, levels, sigma)
    for b in range(2):
        expected = 0.0
        for i in range(3):
            weights = [math.exp(v) for v in logits[b, i].tolist()]
            density = sum(
                w / sum(weights) * math.exp(-0.5 * ((x[b, i].item() - e) / sigma) ** 2)
                / (sigma * math.sqrt(2 * math.pi))
                for w, e in zip(weights, levels.tolist(), strict=True)
            )
            expected += math.log(density)
        assert got[b].item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("make", [tiny_wavenet, tiny_pixelcnn])
@pytest.mark.parametrize("sigma", [0.05, 0.5])
def test_gradient_matches_central_differences(make, sigma: float) -> None:
    model = make()
    x = (torch.rand(2, *model.shape, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: model.smoothed_log_prob(v, sigma), (x,),
                                    eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("make", [tiny_wavenet, tiny_pixelcnn])
def test_small_sigma_at_a_level_is_the_categorical_times_the_gaussian_peak(make) -> None:
    model = make()
    x = torch.randint(0, len(model.levels), (3, *model.shape))
    sigma = 1e-4  # far below the level spacing: every other level's kernel vanishes
    with torch.no_grad():
        got = model.smoothed_log_prob(model.levels[x], sigma)
        logits = model.net(model.levels[x], torch.full((3,), sigma, dtype=torch.float64))
        picked = torch.log_softmax(logits, -1).gather(2, x.view(3, -1, 1)).sum(dim=(1, 2))
    peak = -math.log(sigma) - 0.5 * math.log(2 * math.pi)  # log N(0; 0, sigma^2)
    torch.testing.assert_close(got, picked + x[0].numel() * peak, rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("make", [tiny_wavenet, tiny_pixelcnn])
@pytest.mark.parametrize("sigma", [0.0, 0.3])
def test_changing_x_j_leaves_logits_up_to_j_unchanged(make, sigma: float) -> None:
    model = make()
    x = torch.rand(2, *model.shape, dtype=torch.float64) * 2 - 1
    dims = x[0].numel()
    sigmas = torch.full((2,), sigma, dtype=torch.float64)
    for j in (0, dims // 3, dims - 2, dims - 1):
        changed = x.clone()
        changed.view(2, -1)[:, j] += 0.7
        with torch.no_grad():
            before, after = model.net(x, sigmas), model.net(changed, sigmas)
        assert torch.equal(after[:, : j + 1], before[:, : j + 1])
        if j < dims - 1:
            assert not torch.allclose(after[:, j + 1], before[:, j + 1])


def test_quantize_picks_the_nearest_level() -> None:
    model = tiny_pixelcnn()
    x = torch.randint(0, 17, (4, 1, 8, 8))
    spacing = float(model.levels[1] - model.levels[0])
    wobble = (torch.rand(x.shape, dtype=torch.float64) - 0.5) * 0.98 * spacing
    assert torch.equal(model.quantize(model.levels[x] + wobble), x)
    assert torch.equal(model.quantize(torch.tensor([-5.0, 5.0])), torch.tensor([0, 16]))


# Measured exact test bits/value (see the sidecars): digits 1.795, digits-low 1.725,
# digits-high 1.857 (the plain pixelcnn: 1.813 on digits); piano 3.528, voice 2.883.
# The bounds leave ~0.3 bits of margin for a retrained checkpoint.
SHIPPED = [
    ("pixelcnn-smooth", Digits, 2.1),
    ("pixelcnn-smooth", DigitsLow, 2.05),
    ("pixelcnn-smooth", DigitsHigh, 2.15),
    ("wavenet", Piano, 3.85),
    ("wavenet", Voice, 3.2),
]


@pytest.mark.parametrize(("model", "dataset_class", "bound"), SHIPPED)
def test_shipped_checkpoint_scores_the_test_split(
    model: str, dataset_class: type[Dataset], bound: float
) -> None:
    dataset = dataset_class()
    x = dataset.load("test")
    with torch.no_grad():
        bits = -shipped(model, dataset).log_prob(x).mean().item() / (dataset.dims * math.log(2))
    spec = model_spec(model)
    recorded = json.loads(sidecar(spec.checkpoint_path(dataset.name, {})).read_text())
    assert bits < bound
    assert bits == pytest.approx(recorded["test_bpd"], abs=1e-3)
    assert spec.checkpoint_sha256(dataset.name, {}) == recorded["sha256"]


@pytest.mark.parametrize(("model", "model_class", "dataset_class"),
                         [("wavenet", WaveNet, PianoVoice),
                          ("pixelcnn-smooth", NoiseConditionedPixelCNN, DigitGroups)])
def test_multi_source_dataset_gets_one_prior_per_source(
    model: str, model_class: type[NoiseConditionedAR], dataset_class: type[Dataset]
) -> None:
    dataset = dataset_class()
    priors = shipped(model, dataset)
    assert isinstance(priors, PerSourcePriors)
    assert priors.sources == dataset.sources
    shas = []
    for name in dataset.sources:
        single = shipped(model, dataset.source(name))
        prior = priors.prior(name)
        assert isinstance(prior, model_class)
        for key, value in single.net.state_dict().items():
            assert torch.equal(prior.net.state_dict()[key], value)
        shas.append(model_spec(model).checkpoint_sha256(name, {}))
    joined = " ".join(f"{n}:{s}" for n, s in zip(dataset.sources, shas, strict=True))
    combined = hashlib.sha256(joined.encode()).hexdigest()
    assert model_spec(model).checkpoint_sha256(dataset.name, {}) == combined
    with pytest.raises(KeyError, match="sources"):
        priors.prior("drums")
    x = dataset.load("test")[:2]
    with pytest.raises(Incompatible, match=r"prior\(source\)"):
        priors.logits(x)
    with pytest.raises(Incompatible, match="does not implement CausalConditionals"):
        require(priors, CausalConditionals, "ancestral")
    with pytest.raises(Incompatible, match=r"prior\(source\)"):
        priors.smoothed_log_prob(x.float(), 0.1)


def test_digit_groups_pair_the_two_class_groups() -> None:
    groups = DigitGroups()
    for split in ("train", "test"):
        pairs = groups.load(split)
        low, high = DigitsLow().load(split), DigitsHigh().load(split)
        assert pairs.shape == (min(len(low), len(high)), 2, 1, 8, 8)
        assert torch.equal(pairs, groups.load(split))
        # Each source's images come from its own group, shuffled.
        assert {tuple(im.flatten().tolist()) for im in pairs[:, 0]} <= \
            {tuple(im.flatten().tolist()) for im in low}
    assert set(DigitsLow().labels("test").tolist()) == {0, 1, 2, 3, 4}
    assert set(DigitsHigh().labels("test").tolist()) == {5, 6, 7, 8, 9}
    assert groups.source("digits-high").name == "digits-high"
