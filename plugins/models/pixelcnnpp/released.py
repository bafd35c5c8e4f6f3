"""The PnF originals' CIFAR-10 PixelCNN++s, one fine-tuned per noise level, as a level bank.

The released folder (``finetuned/``) holds 19 files named by sigma,
``pcnn_input_sigma:0.35938_lr:0.00040_nr-resnet5_nr-filters160_9.pth``, sigma
from 1.0 down to 0.01 in [-1, 1] pixel units, each a state dict of Lucas
Caccia's pixel-cnn-pp (nr_resnet 5, nr_filters 160, 10 logistic mixtures,
weight-normalised layers), possibly with DataParallel's ``module.`` prefix.
`net.PixelCNNPPNet` is the same network in arbench's names; the
importer folds weight norm, maps every key, turns the 1x1 "nin" linears into
1x1 convolutions and reorders the output rows into `dmol.Mixture`'s layout.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from arbench import CheckpointError, Dataset
from arbench_plugins.models.pixelcnnpp import dmol
from arbench_plugins.models.pixelcnnpp.net import SCALES, PixelCNNPPNet
from arbench_plugins.models.pnf.level_bank import LevelBank, write_bank
from arbench_plugins.models.pnf.noise_conditioned import discrete_levels
from arbench_plugins.models.pnf.released import (
    fold_weight_norm,
    map_exactly,
    read_state_dict,
    source_record,
)

RELEASED_SIGMAS = tuple(round(10 ** (-2 * k / 18), 5) for k in range(19))  # 1.0 .. 0.01
LEVEL_FILE = re.compile(r"sigma:(\d+\.\d+)_.*\.pth$")


class PixelCNNPPLevel:
    """One level's PixelCNN++: each channel's 256-bin DMoL convolved with N(0, sigma^2)."""

    def __init__(self, net: PixelCNNPPNet) -> None:
        self.net = net

    def smoothed_log_prob(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        mixture = dmol.Mixture.from_output(self.net(x), x.shape[1])
        return dmol.smoothed_log_prob(mixture, x, sigma, self.net.num_levels).sum((1, 2))


def original_key_map(nr_resnet: int) -> dict[str, str]:
    """pixel-cnn-pp's parameter names (weight norm folded) -> `PixelCNNPPNet`'s."""
    names = {"u_init.conv": "u_init.conv", "ul_init.0.conv": "ul_init_up.conv",
             "ul_init.1.conv": "ul_init_left.conv", "nin_out.lin_a": "out"}
    for s in range(SCALES - 1):
        names |= {f"downsize_u_stream.{s}.conv": f"shrink_u.{s}.conv",
                  f"downsize_ul_stream.{s}.conv": f"shrink_ul.{s}.conv",
                  f"upsize_u_stream.{s}.deconv": f"grow_u.{s}.deconv",
                  f"upsize_ul_stream.{s}.deconv": f"grow_ul.{s}.deconv"}
    for s in range(SCALES):
        for way, blocks, skip in (("up", nr_resnet, (False, True)),
                                  ("down", nr_resnet + (s > 0), (True, True))):
            for stream, has_skip in zip(("u", "ul"), skip, strict=True):
                for i in range(blocks):
                    old, new = f"{way}_layers.{s}.{stream}_stream.{i}", f"{way}_{stream}.{s}.{i}"
                    names |= {f"{old}.conv_input.conv": f"{new}.conv_in.conv",
                              f"{old}.conv_out.conv": f"{new}.conv_out.conv"}
                    if has_skip:
                        names[f"{old}.nin_skip.lin_a"] = f"{new}.skip"
    return {f"{old}.{p}": f"{new}.{p}" for old, new in names.items() for p in ("weight", "bias")}


def output_order(channels: int, mixtures: int) -> torch.Tensor:
    """For each `dmol.Mixture` output row, the pixel-cnn-pp row it comes from: there the
    logits come first, then per channel its means, log-scales and coefficients (3M each);
    here the logits, all means, all log-scales, then the coefficients."""
    m, rows = mixtures, [*range(mixtures)]
    per_channel = 3 * m if channels == 3 else 2 * m
    kinds = 3 if channels == 3 else 2
    for kind in range(kinds):
        for c in range(channels):
            rows += [m + c * per_channel + kind * m + j for j in range(m)]
    return torch.tensor(rows)


def released_files(source: Path, allow_missing: bool) -> dict[float, Path]:
    """``{sigma: file}`` of a released folder, all 19 levels unless `allow_missing`."""
    if not source.is_dir():
        raise CheckpointError(f"{source} is not a folder of released PixelCNN++ levels "
                              "(pcnn_input_sigma:1.00000_....pth, ...)")
    files = {float(match[1]): path for path in sorted(source.iterdir())
             if (match := LEVEL_FILE.search(path.name))}
    absent = [f"{sigma:.5f}" for sigma in RELEASED_SIGMAS
              if not any(abs(sigma - s) < 5e-6 for s in files)]
    if not files or (absent and not allow_missing):
        raise CheckpointError(
            f"{source} is not a complete released PixelCNN++ folder: missing levels "
            f"({len(absent)} of {len(RELEASED_SIGMAS)}): sigma {', '.join(absent)}"
            + (" (--set allow_missing_levels=true imports the levels present)" if files
               else ""))
    return files


def _sizes(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """nr_resnet, nr_filters and mixtures read off the shapes."""
    blocks = {key.split(".")[3] for key in state if key.startswith("up_layers.0.u_stream.")}
    channels = state["u_init.conv.weight"].shape[1] - 1
    per_mixture = 10 if channels == 3 else 3
    return {"nr_resnet": len(blocks), "nr_filters": int(state["u_init.conv.weight"].shape[0]),
            "mixtures": int(state["nin_out.lin_a.weight"].shape[0]) // per_mixture,
            "channels": int(channels)}


class PnFPixelCNNPP(LevelBank):
    """The released PnF PixelCNN++s, one per level; ``checkpoint=BANK`` (`arbench import`)."""

    net_class = PixelCNNPPNet

    @classmethod
    def level_network(cls, net: nn.Module, dataset: Dataset) -> PixelCNNPPLevel:
        assert isinstance(net, PixelCNNPPNet)
        return PixelCNNPPLevel(net)

    @classmethod
    def import_released(cls, source: Path, out: Path, *, family: str,
                        **options: Any) -> Path:
        """Import the released ``finetuned/`` folder as a bank."""
        if set(options) - {"allow_missing_levels"}:
            raise ValueError(f"unknown import option(s) {sorted(set(options))}; known: "
                             "allow_missing_levels")
        allow = str(options.get("allow_missing_levels", "false")).lower() in ("1", "true")
        members = []
        for sigma, path in sorted(released_files(Path(source), allow).items(), reverse=True):
            state = fold_weight_norm(read_state_dict(path))
            if "u_init.conv.weight" not in state or "nin_out.lin_a.weight" not in state:
                raise CheckpointError(f"{path} is not a pixel-cnn-pp state dict (no "
                                      "u_init.conv or nin_out.lin_a weights)")
            sizes = _sizes(state)
            channels = sizes.pop("channels")
            config: dict[str, Any] = {"shape": [channels, 32, 32], "num_levels": 256,
                                      "dropout": 0.5, **sizes}
            for key in [k for k in state if ".lin_a.weight" in k]:  # nin: 1x1 conv
                state[key] = state[key][:, :, None, None]
            order = output_order(channels, sizes["mixtures"])
            for p in ("weight", "bias"):
                if state[f"nin_out.lin_a.{p}"].shape[0] == len(order):
                    state[f"nin_out.lin_a.{p}"] = state[f"nin_out.lin_a.{p}"][order]
            target = PixelCNNPPNet(**config).state_dict()
            weights = map_exactly(path, state, original_key_map(sizes["nr_resnet"]), target)
            members.append((sigma, config, weights, {
                "command": f"arbench import {family} {source}",
                "source": source_record([path]),
                "num_parameters": sum(t.numel() for t in weights.values()),
            }))
        return write_bank(out, family, members, {"data": {"shape": [3, 32, 32]},
                                                      "source": str(source)})

    @classmethod
    def check_data(cls, record: dict[str, Any], dataset: Dataset) -> None:
        discrete_levels(dataset)  # a clear error for continuous data
