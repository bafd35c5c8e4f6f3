"""The convolutional backbone of the image ARDMs (``--set backbone=unet``).

A transformer over the 3,072 values of a CIFAR-10 image attends over 3,072
positions in every layer; the original ARDMs use a UNet on images instead.
This one embeds each channel's value (the absorbing state included) and its
known/unknown flag per pixel, stacks the channels, and runs a two-level UNet
(residual blocks with group norm and SiLU, the stage added to every block, one
halving of the resolution) to K logits per channel and pixel. Every position
is predicted in one call, as the order-agnostic samplers need; which positions
are known enters only through the flags, so any order works.

The sizes are arbench's, not the paper's (whose appendix is not in
shared/papers): ``width`` channels at full resolution, twice that at half,
``layers`` blocks per level.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class ResBlock(nn.Module):
    """x + conv(silu(norm(conv(silu(norm(x))) + stage))) with a 1x1 skip if widths differ."""

    def __init__(self, cin: int, cout: int, stage_width: int) -> None:
        super().__init__()
        self.norm_in, self.conv_in = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.stage = nn.Linear(stage_width, cout)
        self.norm_out, self.conv_out = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, stage: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(F.silu(self.norm_in(x))) + self.stage(stage)[:, :, None, None]
        result: torch.Tensor = self.skip(x) + self.conv_out(F.silu(self.norm_out(h)))
        return result


class ImageARDMNet(nn.Module):
    """(values (B, D), known (B, D), stage) -> logits (B, D, K), D = C * H * W flattened
    channel-first, as the datasets store images."""

    def __init__(self, num_levels: int, stages: int, shape: list[int], width: int,
                 layers: int) -> None:
        super().__init__()
        channels, height, width_px = shape
        if height % 2 or width_px % 2:
            raise ValueError(f"the unet halves the image once; {height}x{width_px} is odd")
        self.shape, self.num_levels = tuple(shape), num_levels
        self.value = nn.Embedding(num_levels + 1, width)  # index K: the absorbing state
        self.known = nn.Embedding(2, width)
        self.channel = nn.Parameter(torch.zeros(channels, width))
        self.stage = nn.Embedding(stages, width)
        self.stem = nn.Conv2d(channels * width, width, 3, padding=1)
        self.down = nn.ModuleList(ResBlock(width, width, width) for _ in range(layers))
        self.shrink = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.middle = nn.ModuleList(ResBlock(2 * width, 2 * width, width) for _ in range(layers))
        self.grow = nn.Conv2d(2 * width, width, 3, padding=1)
        self.up = nn.ModuleList(ResBlock(2 * width if i == 0 else width, width, width)
                                for i in range(layers))
        self.head = nn.Sequential(_norm(width), nn.SiLU(),
                                  nn.Conv2d(width, channels * num_levels, 3, padding=1))

    def forward(self, values: torch.Tensor, known: torch.Tensor, stage: int) -> torch.Tensor:
        batch = values.shape[0]
        channels, height, width = self.shape
        embedded = (self.value(values.view(batch, channels, height, width))
                    + self.known(known.long().view(batch, channels, height, width))
                    + self.channel[None, :, None, None])  # (B, C, H, W, E)
        h = self.stem(embedded.permute(0, 1, 4, 2, 3).flatten(1, 2))
        step = self.stage.weight[stage - 1].expand(batch, -1)
        for block in self.down:
            h = block(h, step)
        skip = h
        h = self.shrink(h)
        for block in self.middle:
            h = block(h, step)
        h = torch.cat([self.grow(F.interpolate(h, scale_factor=2.0, mode="nearest")), skip], 1)
        for block in self.up:
            h = block(h, step)
        logits = self.head(h).view(batch, channels, self.num_levels, height, width)
        result: torch.Tensor = logits.permute(0, 1, 3, 4, 2).reshape(batch, -1, self.num_levels)
        return result
