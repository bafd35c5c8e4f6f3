"""PixelCNN: masked convolutions give every pixel's categorical conditional in one call.

One forward pass returns p(x_i | x_<i) for all D pixels at once, which makes
exact likelihoods cheap (one call) while ancestral sampling needs one call per
pixel: the gap the samplers in this benchmark compete over. The first layer
(mask A) hides the pixel itself; later layers (mask B) may look at their own
position, whose features already depend only on earlier pixels.

The network is rebuilt from the ``config`` stored in its checkpoint, so a user
checkpoint with other sizes loads without code changes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from arbench import (
    Dataset,
    Logits,
    Model,
    TrainingLoop,
    epoch_batches,
    load_for,
    loop_options,
    partial_path,
    rebuild_command,
    save_checkpoint,
    split_train_val,
    training_options,
)

TRAIN_DEFAULTS: dict[str, Any] = {
    "channels": 64,
    "blocks": 4,
    "first_kernel": 15,  # spans the whole 8x8 image: the stem sees every earlier pixel
    "kernel": 3,
    "epochs": 200,
    "patience": 15,
    "lr": 1e-3,
    "batch_size": 64,
    "val_fraction": 0.1,
}


class MaskedConv2d(nn.Conv2d):
    """A same-padded convolution that only sees pixels before (A) or up to (B) its centre."""

    mask: torch.Tensor  # a buffer

    def __init__(self, mask_type: str, in_channels: int, out_channels: int, kernel: int) -> None:
        if mask_type not in ("A", "B") or kernel % 2 == 0:
            raise ValueError(f"mask type must be 'A' or 'B' and the kernel odd; got "
                             f"{mask_type!r}, {kernel}")
        super().__init__(in_channels, out_channels, kernel, padding=kernel // 2)
        centre = kernel // 2
        mask = torch.zeros(kernel, kernel)
        mask[:centre] = 1
        mask[centre, : centre + (mask_type == "B")] = 1
        # Rebuilt from the config, so it stays out of the checkpoint.
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(),
            MaskedConv2d("B", channels, channels, kernel),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = h + self.body(h)
        return result


class PixelCNNNet(nn.Module):
    """Single-channel images ``(B, 1, H, W)`` of levels ``0..K-1`` -> logits ``(B, H*W, K)``."""

    def __init__(self, num_levels: int, shape: list[int], channels: int, blocks: int,
                 first_kernel: int, kernel: int) -> None:
        super().__init__()
        if shape[0] != 1:
            raise ValueError(f"PixelCNNNet masks a single channel; data shape is {tuple(shape)}")
        self.num_levels = num_levels
        self.stem = MaskedConv2d("A", 1, channels, first_kernel)
        self.blocks = nn.Sequential(*(ResidualBlock(channels, kernel) for _ in range(blocks)))
        self.head = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(),
            nn.Conv2d(channels, num_levels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scaled = x.float() * (2 / (self.num_levels - 1)) - 1
        out = self.head(self.blocks(self.stem(scaled)))
        result: torch.Tensor = out.flatten(2).transpose(1, 2)
        return result


def _bits_per_dim(net: PixelCNNNet, x: torch.Tensor, batch_size: int = 512) -> float:
    """Mean NLL of `x` in bits/dim; leaves `net` in eval mode."""
    net.eval()
    total = 0.0
    device = next(net.parameters()).device
    with torch.no_grad():
        for chunk in x.split(batch_size):
            chunk = chunk.to(device)
            logits = net(chunk)
            total += F.cross_entropy(
                logits.transpose(1, 2), chunk.flatten(1), reduction="sum"
            ).item()
    return total / (x.numel() * math.log(2))


class RowsSoFar:
    """Incremental PixelCNN generation: each step runs the network on the rows drawn so
    far only. Masked convolutions never look below their centre, so those rows get the
    logits they get in the whole image; early rows cost a fraction of a full pass."""

    def __init__(self, net: PixelCNNNet, n: int, shape: tuple[int, ...],
                 device: torch.device) -> None:
        self.net, self.t, self.width = net, 0, shape[-1]
        self.step_positions = 0
        self.x = torch.zeros(n, *shape, dtype=torch.long, device=device)

    @torch.no_grad()
    def logits(self, previous: torch.Tensor | None) -> torch.Tensor:
        """``(n, K)`` logits of pixel t (raster order) given the pixel drawn before it."""
        if previous is not None:
            self.x.view(self.x.shape[0], -1)[:, self.t - 1] = previous
        row = self.t // self.width
        self.step_positions = (row + 1) * self.width  # the positions the pass evaluates
        logits: torch.Tensor = self.net(self.x[..., : row + 1, :])[:, self.t]
        self.t += 1
        return logits


class PixelCNN(Logits, Model):
    """The trained PixelCNN for a dataset; ``checkpoint=None`` loads the shipped one."""

    provides = frozenset({"causal-logits", "causal-conditionals"})

    def __init__(self, net: PixelCNNNet, dataset: Dataset, **params: Any) -> None:
        super().__init__(**params)
        self.net = net
        self.num_levels = dataset.num_levels
        self.shape = dataset.shape

    @classmethod
    def load(cls, dataset: Dataset, device: torch.device, *, family: str,
             checkpoint: Path | None, **params: Any) -> PixelCNN:
        # The runner and `arbench train` set `dataset.name` to the registered name.
        state = load_for(checkpoint, dataset, device)
        net = PixelCNNNet(**state["config"])
        net.load_state_dict(state["state_dict"])
        net.to(device).eval()
        return cls(net, dataset, **params)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = self.net(x)
        return result

    def incremental(self, n: int) -> RowsSoFar:
        return RowsSoFar(self.net, n, self.shape, next(self.net.parameters()).device)

    @classmethod
    def train(cls, dataset: Dataset, out: Path, seed: int = 0, *, family: str,
              **options: Any) -> Path:
        opts = training_options(options, TRAIN_DEFAULTS)
        config = {
            "num_levels": dataset.num_levels, "shape": list(dataset.shape),
            "channels": opts["channels"], "blocks": opts["blocks"],
            "first_kernel": opts["first_kernel"], "kernel": opts["kernel"],
        }
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        net = PixelCNNNet(**config)

        # Early stopping uses a slice of the train split; the test split is only reported.
        train, val = split_train_val(dataset.load("train"), opts["val_fraction"], generator)
        test = dataset.load("test")
        result = TrainingLoop(
            net, torch.optim.Adam(net.parameters(), lr=opts["lr"]),
            loss=lambda batch, _: F.cross_entropy(net(batch).transpose(1, 2), batch.flatten(1)),
            evaluate=lambda _: _bits_per_dim(net, val), periods=opts["epochs"],
            batches=lambda _: epoch_batches(train, opts["batch_size"], generator),
            patience=opts["patience"], generator=generator, resume=partial_path(out),
            fingerprint={"seed": seed, **opts}, splittable=True, **loop_options(opts)).run()
        metadata = {
            "command": rebuild_command(family, dataset.name, seed, options),
            "seed": seed,
            "options": opts,
            "best_epoch": result.period,
            "val_bpd": round(result.score, 4),
            "test_bpd": round(_bits_per_dim(net, test), 4),
            "num_parameters": sum(p.numel() for p in net.parameters()),
            "train_seconds": result.seconds, "training": result.cost,
            "torch_version": torch.__version__,
        }
        print(f"best epoch {result.period}: val {metadata['val_bpd']} bits/dim, "
              f"test {metadata['test_bpd']} bits/dim", flush=True)
        return save_checkpoint(Path(out), config, net.state_dict(), metadata)
