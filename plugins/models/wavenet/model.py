"""WaveNet: dilated causal convolutions over 8-bit audio, conditioned on the noise level.

The PnF audio prior. A stack of gated residual blocks (tanh * sigmoid, residual
and skip connections, as in WaveNet) with dilations 1, 2, ..., 128 repeated
twice sees the 512 previous samples (64 ms at 8 kHz: a few pitch periods of
even low piano notes) and one forward pass gives p(x_t | x_<t) for every t.
The input is shifted right by one sample so output t never sees x_t.

sigma enters as WaveNet's global conditioning: an embedding of
log(sigma + 1e-3) is projected onto each block's gate and filter
pre-activations, a bias that depends on sigma only and so keeps the network
causal. The network is rebuilt from the checkpoint's config.

Sizes are training presets (``arbench train wavenet --set preset=NAME``; any
option set alongside overrides the preset's):

* ``cpu-small`` (the default, the shipped checkpoints): 32 residual channels,
  2 x 8 layers, receptive field 512 samples (64 ms at 8 kHz), crops of 1024;
  about five minutes on one CPU thread;
* ``cpu-large``: 64 channels, 2 x 9 layers (1024 samples, 128 ms), crops of
  2048, up to 60 epochs in an hour: the 30-60 minute CPU budget;
* ``paper``: the PnF original's WaveNet (128 residual and skip channels, 3
  stacks of 10 layers with kernel 3: 6140 samples, 0.28 s at 22.05 kHz), crops
  of 8192, batch 8, lr 1e-3: a GPU's job (about 23 s per step on two CPU cores).

docs/audio.md gives the time and quality each reaches on the embedded data.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from arbench_plugins.models.pnf.noise_conditioned import NoiseConditionedAR, SigmaEmbedding

ARCH_DEFAULTS: dict[str, Any] = {
    "channels": 32,  # residual channels
    "skip_channels": 64,
    "stacks": 2,
    "layers": 8,  # per stack: dilations 1, 2, ..., 2 ** (layers - 1)
    "embed": 32,  # width of the sigma embedding
    "kernel": 2,  # taps of each dilated convolution
}

# Audio data lie in [-1, 1] with level spacing 2/255 ~ 0.008: sigma_min 0.003 is
# below half a level (the history is as good as clean) and sigma_max 1.0 drowns
# the signal, the range PnF anneals over.
TRAIN_DEFAULTS: dict[str, Any] = {
    "epochs": 24,  # about five minutes on one CPU thread
    "patience": 4,
    # Tiny batches of crops: on a CPU budget, more steps beat bigger batches
    # (at equal time, batch 2 / lr 4e-3 reached 0.3 bits below batch 8 / lr 2e-3).
    "lr": 4e-3,
    "batch_size": 2,
    "crop": 1024,
    "val_fraction": 0.1,
    "val_max": 48,  # examples; the score is computed at three sigmas per epoch
    "val_sigmas": [0.01, 0.1],
    "sigma_min": 0.003,
    "sigma_max": 1.0,
    "p_clean": 0.2,
    "max_seconds": 600,
}

PRESETS: dict[str, dict[str, Any]] = {
    "cpu-small": {},
    "cpu-large": {"channels": 64, "skip_channels": 128, "layers": 9, "crop": 2048,
                  "epochs": 60, "patience": 8, "max_seconds": 3600},
    "paper": {"channels": 128, "skip_channels": 128, "stacks": 3, "layers": 10, "kernel": 3,
              "crop": 8192, "batch_size": 8, "lr": 1e-3, "epochs": 200, "patience": 20,
              "max_seconds": float("inf")},
}


class CausalConv1d(nn.Conv1d):
    """A convolution padded on the left only, so output t sees inputs up to t."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, dilation: int) -> None:
        super().__init__(in_channels, out_channels, kernel, dilation=dilation)
        self.left = (kernel - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left, 0)))


class GatedBlock(nn.Module):
    """tanh(filter) * sigmoid(gate) of a dilated causal conv plus the sigma bias."""

    def __init__(self, channels: int, skip_channels: int, embed: int, dilation: int,
                 kernel: int = 2) -> None:
        super().__init__()
        self.conv = CausalConv1d(channels, 2 * channels, kernel, dilation)
        self.cond = nn.Linear(embed, 2 * channels)
        self.residual = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, skip_channels, 1)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        filt, gate = (self.conv(h) + self.cond(c).unsqueeze(2)).chunk(2, dim=1)
        z = torch.tanh(filt) * torch.sigmoid(gate)
        return h + self.residual(z), self.skip(z)


class WaveNetNet(nn.Module):
    """``x (B, T)`` continuous, sigma ``(B,)`` -> logits ``(B, T, K)``; row t sees x_<t."""

    def __init__(self, num_levels: int, shape: list[int], channels: int, skip_channels: int,
                 stacks: int, layers: int, embed: int, kernel: int = 2) -> None:
        super().__init__()
        if len(shape) != 1:
            raise ValueError(f"WaveNetNet models 1-D sequences; data shape is {tuple(shape)}")
        self.sigma = SigmaEmbedding(embed)
        self.input = CausalConv1d(1, channels, 2, 1)
        self.blocks = nn.ModuleList(
            GatedBlock(channels, skip_channels, embed, 2**layer, kernel)
            for _ in range(stacks) for layer in range(layers)
        )
        self.head = nn.Sequential(
            nn.ReLU(), nn.Conv1d(skip_channels, skip_channels, 1), nn.ReLU(),
            nn.Conv1d(skip_channels, num_levels, 1),
        )

    @property
    def receptive_field(self) -> int:
        """How many previous samples the prediction of x_t can see."""
        blocks = cast("list[GatedBlock]", self.blocks)
        return 1 + self.input.left + sum(block.conv.left for block in blocks)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        shifted = F.pad(x[:, :-1], (1, 0)).unsqueeze(1)  # position t holds x_{t-1}
        c = self.sigma(sigma.to(x.dtype))
        h, skips = self.input(shifted), 0
        for block in self.blocks:
            h, skip = block(h, c)
            skips = skips + skip
        result: torch.Tensor = self.head(skips).transpose(1, 2)
        return result


class WaveNet(NoiseConditionedAR):
    """The trained noise-conditioned WaveNet of an audio dataset.

    ``checkpoint=None`` loads the shipped one; a path loads a user checkpoint,
    or, for a multi-source dataset (pianovoice), a folder of ``{source}.pt``.
    """

    net_class = WaveNetNet
    arch_defaults = ARCH_DEFAULTS
    train_defaults = TRAIN_DEFAULTS
    presets = PRESETS
    multi_source = {"pianovoice": ("piano", "voice")}

    def incremental(self, n: int) -> Any:
        """Queue-based generation: one step through every layer per sample (the queues
        hold one past value per layer, so only for two-tap convolutions)."""
        blocks = cast("list[GatedBlock]", cast(WaveNetNet, self.net).blocks)
        if blocks[0].conv.kernel_size[0] != 2:
            return None
        from arbench_plugins.models.wavenet.cache import WaveNetQueues

        return WaveNetQueues(cast(WaveNetNet, self.net), self.levels, n)

    @classmethod
    def prior_advice(cls, dataset: str, test_bits: float) -> str | None:
        """What the measured curve of benchmarks/pnf_prior_quality.py says about PnF."""
        return (
            f"PnF and this prior ({test_bits:.3f} test bits/value): PnF needs a strong prior. "
            f"On the embedded piano it lost to spline at 4x super-resolution with a 4.92 "
            f"bits/value prior, tied at 4x and won at 8x with the shipped 3.53, won at both with "
            f"a cpu-large 3.24; on the embedded "
            f"speech spline won at 4x and 8x with every prior tried (down to 2.88). Bits/value "
            f"compare only on the same data, so before trusting PnF on {dataset}, compare it "
            f"with spline on the validation split: arbench run --task superres --sampler pnf "
            f"--dataset {dataset} --set wavenet.checkpoint=THIS --set superres.split=validation "
            f"(docs/audio.md)")

    @classmethod
    def fits(cls, trained: tuple[int, ...], shape: tuple[int, ...]) -> bool:
        """Any clip length: the convolutions do not depend on it."""
        return len(shape) == 1

    @classmethod
    def training_batch(cls, batch: torch.Tensor, opts: dict[str, Any],
                       generator: torch.Generator) -> torch.Tensor:
        """A random window of `crop` samples from each example."""
        length = min(opts["crop"], batch.shape[1])
        starts = torch.randint(0, batch.shape[1] - length + 1, (len(batch), 1),
                               generator=generator)
        return batch.gather(1, starts + torch.arange(length))
