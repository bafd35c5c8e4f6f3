"""The shipped PixelCNN and the ancestral sampler: causal, verified, reproducible, exact."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from conftest import model_spec, shipped

from arbench.errors import CheckpointError, Incompatible
from arbench.training.checkpoints import sidecar
from arbench_plugins.datasets.digits import Digits
from arbench_plugins.models.pixelcnn.model import PixelCNN, PixelCNNNet
from arbench_plugins.samplers.ancestral import Ancestral

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def digits() -> Digits:
    return Digits()


@pytest.fixture(scope="module")
def model(digits: Digits) -> PixelCNN:
    return shipped("pixelcnn", digits)


@pytest.mark.parametrize("first_kernel", [7, 15])
@pytest.mark.parametrize("j", [0, 9, 30, 63])
def test_changing_pixel_j_leaves_earlier_conditionals_unchanged(first_kernel: int, j: int) -> None:
    torch.manual_seed(0)
    net = PixelCNNNet(num_levels=17, shape=[1, 8, 8], channels=16, blocks=2,
                      first_kernel=first_kernel, kernel=3).eval()
    x = torch.randint(0, 17, (4, 1, 8, 8))
    changed = x.clone()
    changed.view(4, -1)[:, j] = (changed.view(4, -1)[:, j] + 8) % 17
    with torch.no_grad():
        before, after = net(x), net(changed)
    torch.testing.assert_close(after[:, : j + 1], before[:, : j + 1], rtol=0, atol=1e-6)
    if j < 63:
        assert not torch.allclose(after[:, j + 1], before[:, j + 1])


def test_shipped_checkpoint_scores_the_test_split(model: PixelCNN, digits: Digits) -> None:
    scored = Ancestral().nll(model, digits.load("test"), budget=None)
    bpd = float(scored.nll_nats.mean()) / (digits.dims * math.log(2))
    assert 1.0 < bpd < 2.3
    assert scored.nfe == 1  # one parallel pass scores every value
    recorded = json.loads(sidecar(model_spec("pixelcnn").checkpoint_path("digits", {})).read_text())
    assert bpd == pytest.approx(recorded["test_bpd"], abs=1e-3)


def test_checkpoint_sha256_is_the_recorded_one() -> None:
    spec = model_spec("pixelcnn")
    recorded = json.loads(sidecar(spec.checkpoint_path("digits", {})).read_text())
    assert spec.checkpoint_sha256("digits", {}) == recorded["sha256"]


def test_corrupted_checkpoint_is_refused(tmp_path: Path, digits: Digits) -> None:
    original = model_spec("pixelcnn").checkpoint_path("digits", {})
    copy = tmp_path / original.name
    shutil.copy(original, copy)
    shutil.copy(sidecar(original), sidecar(copy))
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        shipped("pixelcnn", digits, checkpoint=str(copy))


def test_a_checkpoint_for_other_data_is_refused_with_both_shapes(digits: Digits) -> None:
    from types import SimpleNamespace

    other = SimpleNamespace(name="other", shape=(1, 4, 4), num_levels=17)
    with pytest.raises(CheckpointError, match=r"shape \(1, 8, 8\) with 17 levels; dataset "
                                              r"'other' has \(1, 4, 4\)"):
        shipped("pixelcnn", other,
                checkpoint=str(model_spec("pixelcnn").checkpoint_path("digits", {})))


def test_same_seed_gives_same_samples(model: PixelCNN, digits: Digits) -> None:
    def draw(seed: int) -> torch.Tensor:
        out = Ancestral().sample(model, digits, 6, None, torch.Generator().manual_seed(seed))
        assert out.nfe == 64
        return out.samples

    first, second, other = draw(1), draw(1), draw(2)
    assert first.shape == (6, 1, 8, 8)
    assert first.dtype == torch.long
    assert int(first.min()) >= 0 and int(first.max()) <= 16
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


def test_budget_below_dims_is_incompatible_and_above_uses_dims(
    model: PixelCNN, digits: Digits
) -> None:
    sampler = Ancestral()
    x = digits.load("test")[:4]
    with pytest.raises(Incompatible, match="D=64"):
        sampler.sample(model, digits, 2, 32, torch.Generator().manual_seed(0))
    with pytest.raises(Incompatible, match="budget 32"):
        sampler.nll(model, x, 32)
    assert sampler.sample(model, digits, 2, 100, torch.Generator().manual_seed(0)).nfe == 64
    assert sampler.nll(model, x, 100).nfe == 1


def test_log_prob_is_the_sum_of_picked_conditionals(model: PixelCNN, digits: Digits) -> None:
    x = digits.load("test")[:8]
    with torch.no_grad():
        log_probs = torch.log_softmax(model.logits(x), dim=-1)  # (B, 64, 17)
        expected = torch.stack([
            sum(log_probs[b, i, x.view(8, -1)[b, i]] for i in range(64)) for b in range(8)
        ])
        got = model.log_prob(x)
    assert got.shape == (8,)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)
