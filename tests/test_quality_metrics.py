"""FID and Inception Score in the digits classifier's feature space, and their reference cache."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.linalg
import torch
from conftest import model_spec, shipped

from arbench.plugin.capabilities import ImageFeatures
from arbench.training.checkpoints import sidecar
from arbench_plugins.datasets.digits import Digits
from arbench_plugins.metrics import quality, reference_stats
from arbench_plugins.metrics.quality import (
    FID,
    ExtractorUnavailable,
    InceptionFID,
    InceptionScore,
)
from arbench_plugins.models.classifier.model import DigitsClassifier

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Every test gets its own empty reference cache, never ~/.cache."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(reference_stats.CACHE_ENV, str(folder))
    return folder


@pytest.fixture(scope="module")
def digits() -> Digits:
    return Digits()


@pytest.fixture(scope="module")
def classifier(digits: Digits) -> DigitsClassifier:
    return shipped("digits-classifier", digits)


@pytest.fixture(scope="module")
def noise() -> torch.Tensor:
    return torch.rand((360, 1, 8, 8), generator=torch.Generator().manual_seed(0)) * 2 - 1


def count_reference_computations(monkeypatch) -> list[str]:
    calls: list[str] = []
    original = reference_stats.compute_reference_statistics

    def counting(dataset, extractor, *args, **kwargs):
        calls.append(extractor.name)
        return original(dataset, extractor, *args, **kwargs)

    monkeypatch.setattr(reference_stats, "compute_reference_statistics", counting)
    return calls


def test_shipped_classifier_is_accurate(classifier: DigitsClassifier, digits: Digits) -> None:
    test = digits.load("test")
    with torch.no_grad():
        predicted = classifier.logits(digits.continuous(test)).argmax(dim=1)
    accuracy = float((predicted == digits.labels("test")).float().mean())
    assert accuracy > 0.9
    spec = model_spec("digits-classifier")
    recorded = json.loads(sidecar(spec.checkpoint_path("digits", {})).read_text())
    assert accuracy == pytest.approx(recorded["test_accuracy"], abs=1e-3)
    assert recorded["command"] == "arbench train digits-classifier --dataset digits"
    assert spec.checkpoint_sha256("digits", {}) == recorded["sha256"] == classifier.sha256


def test_classifier_is_a_feature_extractor(classifier: DigitsClassifier, digits: Digits) -> None:
    assert isinstance(classifier, ImageFeatures)
    levels = digits.load("test")[:5]
    with torch.no_grad():
        features, logits = classifier.features(levels), classifier.logits(levels)
        assert features.shape == (5, classifier.num_features) == (5, 64)
        assert logits.shape == (5, 10)
        torch.testing.assert_close(classifier.features(digits.continuous(levels)), features)


def test_fid_of_the_test_split_with_itself_is_zero(digits: Digits, noise: torch.Tensor) -> None:
    test = digits.load("test")
    state = torch.get_rng_state()
    against_noise = FID()(noise, digits)
    assert torch.equal(torch.get_rng_state(), state)  # loading the extractor draws no numbers
    assert against_noise > 100
    assert FID()(test, digits) < 1e-3 * against_noise
    assert FID()(digits.continuous(test), digits) == pytest.approx(FID()(test, digits), abs=1e-9)


def test_fid_is_the_frechet_distance_of_the_features(classifier: DigitsClassifier,
                                                     digits: Digits) -> None:
    samples = digits.load("train")[:500]
    with torch.no_grad():
        fake = classifier.features(samples).double().numpy()
        real = classifier.features(digits.load("test")).double().numpy()
    mu1, mu2 = fake.mean(0), real.mean(0)
    s1, s2 = np.cov(fake, rowvar=False), np.cov(real, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    direct = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))
    assert direct > 1
    assert FID()(samples, digits) == pytest.approx(direct, rel=1e-3)


def test_inception_score_of_digits_beats_noise(digits: Digits, noise: torch.Tensor) -> None:
    state = torch.get_rng_state()
    real = InceptionScore()(digits.load("test"), digits)
    assert torch.equal(torch.get_rng_state(), state)  # its shuffle leaves the global RNG alone
    assert 1 < real <= 10
    assert real > InceptionScore()(noise, digits) + 3
    assert InceptionScore(splits=4)(digits.load("test"), digits) < real  # splitting biases down


def test_bootstrap_replicates_use_the_metrics_own_formulas(classifier: DigitsClassifier,
                                                          digits: Digits) -> None:
    """A replicate is the metric of a resampled set: on the whole set the replicate formulas
    give the FID (equal to torchmetrics') and torchmetrics' IS, and the replicates spread
    around them."""
    from torchmetrics.image.fid import _compute_fid

    samples = digits.load("train")[:300]
    with torch.no_grad():
        features = classifier.features(digits.continuous(samples)).double().numpy()
        probs = torch.softmax(classifier.logits(digits.continuous(samples)).double(), 1).numpy()
    reference = reference_stats.reference_statistics(digits, classifier, CPU)
    root = scipy.linalg.sqrtm(reference.cov).real
    fid = FID().measure(samples, digits)
    assert quality.frechet_distance(features, reference, root) == pytest.approx(fid.value,
                                                                                rel=1e-6)
    theirs = _compute_fid(*(torch.as_tensor(a) for a in (
        features.mean(0), np.cov(features, rowvar=False), reference.mean, reference.cov)))
    assert fid.value == pytest.approx(float(theirs), rel=1e-6)
    assert len(fid.replicates) == 200 and np.std(fid.replicates) > 0
    assert np.percentile(fid.replicates, 2.5) < fid.value * 1.5
    score = InceptionScore().measure(samples, digits)
    assert quality.inception_score_of(probs) == pytest.approx(score.value, rel=1e-6)
    low, high = np.percentile(score.replicates, [2.5, 97.5])
    assert low < score.value < high


@dataclass
class Renamed:
    """The classifier under another extractor name or weights hash."""

    inner: DigitsClassifier
    name: str
    sha256: str
    num_features: int = 64

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner.features(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner.logits(x)


def test_reference_statistics_are_cached_per_extractor(monkeypatch, cache, digits: Digits,
                                                       classifier: DigitsClassifier) -> None:
    calls = count_reference_computations(monkeypatch)
    samples = digits.load("train")[:400]
    first = FID()(samples, digits)
    assert FID()(samples, digits) == first
    assert calls == ["digits-classifier"]
    assert len(list((cache / "fid-reference").glob("*.npz"))) == 1

    other = Renamed(classifier, "other-extractor", classifier.sha256)
    assert FID(extractor=other)(samples, digits) == pytest.approx(first)
    retrained = Renamed(classifier, "digits-classifier", "0" * 64)
    FID(extractor=retrained)(samples, digits)
    assert calls == ["digits-classifier", "other-extractor", "digits-classifier"]
    assert len(list((cache / "fid-reference").glob("*.npz"))) == 3
    assert not list((cache / "fid-reference").glob("*.tmp"))


def test_a_corrupt_cache_file_is_recomputed(monkeypatch, cache, digits: Digits) -> None:
    samples = digits.load("train")[:400]
    value = FID()(samples, digits)
    (path,) = (cache / "fid-reference").glob("*.npz")
    path.write_bytes(path.read_bytes()[:100])
    calls = count_reference_computations(monkeypatch)
    with pytest.warns(UserWarning, match="unreadable or stale"):
        assert FID()(samples, digits) == pytest.approx(value, rel=1e-12)
    assert calls == ["digits-classifier"]
    assert FID()(samples, digits) == pytest.approx(value, rel=1e-12)  # rewritten whole
    assert calls == ["digits-classifier"]


def test_small_samples_warn_about_bias(digits: Digits) -> None:
    with pytest.warns(UserWarning, match="biased upward"):
        FID()(digits.load("train")[:64], digits)


def test_samples_must_match_the_dataset(digits: Digits) -> None:
    with pytest.raises(ValueError, match="do not match"):
        FID()(torch.zeros(10, 1, 4, 4), digits)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network, and an empty torch hub cache."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def test_missing_inception_weights_give_a_clear_error(offline, tmp_path, digits: Digits) -> None:
    assert quality.inception_weights_path() is None
    with pytest.raises(ExtractorUnavailable, match="never downloads") as error:
        InceptionFID()(digits.load("test"), digits)
    message = str(error.value)
    assert "pt_inception-2015-12-05-" in message and str(tmp_path / "torch") in message
    assert quality.INCEPTION_WEIGHTS_URL in message and "weights=PATH" in message
    assert quality.INCEPTION_WEIGHTS_ENV in message
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(ExtractorUnavailable, match=f"the file {missing} does not exist"):
        InceptionFID(weights=str(missing))(digits.load("test"), digits)
    not_weights = tmp_path / "pt_inception-2015-12-05-wrong.pth"
    torch.save({"fc.weight": torch.zeros(3)}, not_weights)
    with pytest.raises(ExtractorUnavailable, match="is not pytorch-fid's Inception weights"):
        InceptionFID(weights=str(not_weights))(digits.load("test")[:4], digits)
