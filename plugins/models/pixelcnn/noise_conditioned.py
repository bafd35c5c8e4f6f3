"""NoiseConditionedPixelCNN: the PixelCNN of `pixelcnn.py` on continuous, noisy pixels, given sigma.

The PnF image prior. It reuses PixelCNN's masked convolutions (mask A in the
stem, so pixel i never sees itself; mask B in the residual blocks) but reads
pixels as continuous values in data units, so it can be fed a noisy history
and differentiated through. sigma enters as a per-channel bias before every
residual block and the head, computed from an embedding of log(sigma + 1e-3):
it depends on sigma only, so the network stays causal.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from arbench_plugins.models.pixelcnn.model import MaskedConv2d, ResidualBlock
from arbench_plugins.models.pnf.noise_conditioned import NoiseConditionedAR, SigmaEmbedding

ARCH_DEFAULTS: dict[str, Any] = {
    "channels": 64,
    "blocks": 4,
    "first_kernel": 15,  # spans the whole 8x8 image: the stem sees every earlier pixel
    "kernel": 3,
    "embed": 32,  # width of the sigma embedding
}

# Images lie in [-1, 1] with level spacing 1/8: the reference schedule is
# geomspace(1.0, 0.01, 19), and sigma = 0.01 leaves the levels unambiguous.
TRAIN_DEFAULTS: dict[str, Any] = {
    "epochs": 150,
    "patience": 20,
    "lr": 1e-3,
    "batch_size": 64,
    "val_fraction": 0.1,
    "val_max": 1000,
    "val_sigmas": [0.01, 0.1],
    "sigma_min": 0.01,
    "sigma_max": 1.0,
    "p_clean": 0.2,
    "max_seconds": 300,
}


class BiasedPixelCNN(nn.Module):
    """The PixelCNN trunk on continuous single-channel images, with a conditioning bias
    added before every residual block and the head: sigma's here, x~'s in the reverse
    model of distribution smoothing. Subclasses build their conditioning first, then
    `add_trunk` (so parameters are initialised in the same order as ever)."""

    def add_trunk(self, num_levels: int, shape: list[int], channels: int, blocks: int,
                  first_kernel: int, kernel: int) -> None:
        """Build the PixelCNN trunk whose output the noise level's bias is added to."""
        if shape[0] != 1:
            raise ValueError(f"{type(self).__name__} masks a single channel; data shape is "
                             f"{tuple(shape)}")
        self.stem = MaskedConv2d("A", 1, channels, first_kernel)
        self.blocks = nn.ModuleList(ResidualBlock(channels, kernel) for _ in range(blocks))
        self.head = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(),
            nn.Conv2d(channels, num_levels, 1),
        )

    def trunk(self, x: torch.Tensor, biases: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, H*W, K)`` of ``x (B, 1, H, W)``; `biases` ``(B, C * (blocks + 1),
        1 or H, 1 or W)`` are split into one bias per block and one for the head."""
        parts = biases.chunk(len(self.blocks) + 1, dim=1)
        h = self.stem(x)
        for block, bias in zip(self.blocks, parts, strict=False):
            h = block(h + bias)
        result: torch.Tensor = self.head(h + parts[-1]).flatten(2).transpose(1, 2)
        return result


class NoiseConditionedPixelCNNNet(BiasedPixelCNN):
    """``x (B, 1, H, W)`` continuous, sigma ``(B,)`` -> logits ``(B, H*W, K)``."""

    def __init__(self, num_levels: int, shape: list[int], channels: int, blocks: int,
                 first_kernel: int, kernel: int, embed: int) -> None:
        super().__init__()
        self.sigma = SigmaEmbedding(embed)
        self.bias = nn.Linear(embed, channels * (blocks + 1))
        self.add_trunk(num_levels, shape, channels, blocks, first_kernel, kernel)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return self.trunk(x, self.bias(self.sigma(sigma.to(x.dtype)))[:, :, None, None])


class NoiseConditionedPixelCNN(NoiseConditionedAR):
    """The trained noise-conditioned PixelCNN of an image dataset.

    ``checkpoint=None`` loads the shipped one; a path loads a user checkpoint,
    or, for a multi-source dataset (digit-groups), a folder of ``{source}.pt``.
    """

    net_class = NoiseConditionedPixelCNNNet
    arch_defaults = ARCH_DEFAULTS
    train_defaults = TRAIN_DEFAULTS
    multi_source = {"digit-groups": ("digits-low", "digits-high")}
