"""Cached (queue-based) WaveNet generation: the same logits and samples as the naive path."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from conftest import shipped

from arbench_plugins.datasets.audio import Piano
from arbench_plugins.models.wavenet.model import WaveNet
from arbench_plugins.samplers.ancestral import Ancestral, naive_sample


@pytest.fixture(scope="module")
def wavenet() -> WaveNet:
    piano = Piano()
    piano.name = "piano"
    return shipped("wavenet", piano)


def test_queues_give_the_logits_of_a_full_forward_pass(wavenet):
    """Past the receptive field (512), so every queue has wrapped around."""
    x = torch.randint(0, 256, (3, 700), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = wavenet.logits(x)
    cache = wavenet.incremental(3)
    steps = torch.stack([cache.logits(None if t == 0 else x[:, t - 1]) for t in range(700)], 1)
    torch.testing.assert_close(steps, full, atol=1e-4, rtol=1e-4)


def test_cached_sampling_draws_the_naive_paths_samples(wavenet):
    clips = SimpleNamespace(dims=600, shape=(600,), num_levels=256)
    cached = Ancestral().sample(wavenet, clips, 4, None, torch.Generator().manual_seed(1))
    naive = naive_sample(wavenet, clips, 4, torch.Generator().manual_seed(1))
    assert cached.nfe == naive.nfe == 600
    assert torch.equal(cached.samples, naive.samples)


@pytest.fixture(scope="module")
def digits():
    from arbench_plugins.datasets.digits import Digits

    dataset = Digits()
    dataset.name = "digits"
    return dataset


def test_pixelcnn_rows_so_far_give_the_whole_images_logits_and_samples(digits):

    model = shipped("pixelcnn", digits)
    x = torch.randint(0, 17, (3, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    cache = model.incremental(3)
    steps = torch.stack([cache.logits(None if t == 0 else x.view(3, -1)[:, t - 1])
                         for t in range(64)], 1)
    torch.testing.assert_close(steps, model.logits(x), atol=1e-5, rtol=1e-5)
    drawn = Ancestral().sample(model, digits, 64, None, torch.Generator().manual_seed(0))
    naive = naive_sample(model, digits, 64, torch.Generator().manual_seed(0))
    assert torch.equal(drawn.samples, naive.samples)


def test_models_without_a_cache_take_the_naive_path(digits):

    model = shipped("pixelcnn-smooth", digits)
    assert model.incremental(2) is None
    drawn = Ancestral().sample(model, digits, 2, None, torch.Generator().manual_seed(0))
    naive = naive_sample(model, digits, 2, torch.Generator().manual_seed(0))
    assert torch.equal(drawn.samples, naive.samples)
