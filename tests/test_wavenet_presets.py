"""The WaveNet training presets: their sizes, receptive fields and a causal kernel-3 net."""

from __future__ import annotations

import pytest
import torch

from arbench.training.checkpoints import training_options
from arbench.training.loop import LOOP_DEFAULTS
from arbench_plugins.datasets.tones import Tones
from arbench_plugins.models.wavenet.model import (
    ARCH_DEFAULTS,
    PRESETS,
    TRAIN_DEFAULTS,
    WaveNet,
    WaveNetNet,
)

DEFAULTS = {**ARCH_DEFAULTS, **TRAIN_DEFAULTS}


def net_of(preset: str, **overrides) -> WaveNetNet:
    opts = training_options({"preset": preset, **overrides}, DEFAULTS, PRESETS)
    return WaveNetNet(256, [64], **{key: opts[key] for key in ARCH_DEFAULTS})


def test_presets_set_sizes_that_explicit_options_override():
    assert training_options({}, DEFAULTS, PRESETS) == {**LOOP_DEFAULTS, **DEFAULTS, "preset": None}
    large = training_options({"preset": "cpu-large", "epochs": 3}, DEFAULTS, PRESETS)
    assert (large["channels"], large["crop"], large["epochs"]) == (64, 2048, 3)
    with pytest.raises(ValueError, match="unknown preset 'huge'; known: cpu-small, cpu-large"):
        training_options({"preset": "huge"}, DEFAULTS, PRESETS)
    # 1 + the input conv's tap + the sum over blocks of (kernel - 1) * dilation
    assert net_of("cpu-small").receptive_field == 512
    assert net_of("cpu-large").receptive_field == 1024
    assert net_of("paper").receptive_field == 1 + 1 + 3 * 2 * (2**10 - 1)  # 6140


def test_a_kernel_3_net_is_causal():
    torch.manual_seed(0)
    net = net_of("cpu-small", kernel=3, layers=4, stacks=1).eval()
    x, sigma = torch.rand(1, 64) * 2 - 1, torch.zeros(1)
    changed = x.clone()
    changed[0, 40] += 0.5
    with torch.no_grad():
        before, after = net(x, sigma), net(changed, sigma)
    moved = (before - after).abs().amax(dim=2)[0]
    assert float(moved[:41].max()) == 0.0  # row t sees x_<t only: rows 0..40 never see x_40
    assert float(moved[41]) > 0.0  # row 41 predicts x_41 from x_40
    # the per-layer queues of fast generation hold one past value: two-tap kernels only
    assert WaveNet(net, Tones(clip_length=64)).incremental(2) is None
    assert WaveNet(net_of("cpu-small"), Tones(clip_length=64)).incremental(2) is not None
