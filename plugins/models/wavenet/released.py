"""The PnF originals' WaveNet (their fork of r9y9's wavenet_vocoder) as a level bank.

Jayaram & Thickstun released one WaveNet per noise level for Supra piano and
VCTK voice: 30 layers in 3 stacks (dilations 1..512, kernel 3), residual 128,
gate 256, skip 128, a scalar input and a 256-way softmax, weight-normalised
convolutions, at 22,050 Hz on 8-bit audio (mu-law for super-resolution and
inpainting, linear for separation). A level's folder is named by its sigma in
quantisation bins (``checkpoints175pt9`` ... ``checkpoints0pt1``, 24 levels)
and holds ``checkpoint_latest_ema.pth`` with the weights under ``state_dict``.

`VocoderWaveNetNet` is that network with plain convolutions (the importer
folds each weight-normalised pair into its weight) and arbench's conventions:
values in data units ([-1, 1], level k at -1 + 2k/255), mapped to the bins the
original is fed (0..255 as floats); position t sees x_<t, the input shifted by
one sample with silence (bin 127.5) in front, where the original simply does
not predict its first sample. `PnFWaveNet` (``pnf-wavenet``) is the bank.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from arbench import CheckpointError, Dataset, level_values
from arbench_plugins.models.pnf.level_bank import LevelBank, write_bank
from arbench_plugins.models.pnf.noise_conditioned import (
    discrete_levels,
    smoothed_log_prob_from_logits,
)
from arbench_plugins.models.pnf.released import (
    fold_weight_norm,
    map_exactly,
    read_state_dict,
    source_record,
)

# The originals' annealing schedule, in quantisation bins (pnf_utils.CHECKPOINTS).
RELEASED_BINS = (175.9, 110.0, 68.7, 54.3, 42.9, 34.0, 26.8, 21.2, 16.8, 13.3, 10.5, 8.29,
                 6.55, 5.18, 4.1, 3.24, 2.56, 1.6, 1.0, 0.625, 0.39, 0.244, 0.15, 0.1)
LEVEL_FOLDER = re.compile(r"^checkpoints(\d+)pt(\d+)$")
LEVEL_FILE = "checkpoint_latest_ema.pth"
INPUT_TYPES = {"mulaw-quantize": "mulaw", "linear-quantize": "linear"}
ORIGINAL_SIZES = {"layers": 30, "stacks": 3, "residual_channels": 128, "gate_channels": 256,
                  "skip_channels": 128, "kernel_size": 3}


class VocoderWaveNetNet(nn.Module):
    """``x (B, T)`` in data units -> logits ``(B, T, K)``; row t sees x_<t."""

    def __init__(self, num_levels: int, shape: list[int], layers: int, stacks: int,
                 residual_channels: int, gate_channels: int, skip_channels: int,
                 kernel_size: int) -> None:
        super().__init__()
        if layers % stacks:
            raise ValueError(f"{layers} layers do not split into {stacks} stacks")
        self.num_levels, self.kernel = num_levels, kernel_size
        self.input = nn.Conv1d(1, residual_channels, 1)
        self.dilations = [2 ** (layer % (layers // stacks)) for layer in range(layers)]
        self.blocks = nn.ModuleList(nn.ModuleDict({
            "conv": nn.Conv1d(residual_channels, gate_channels, kernel_size, dilation=dilation),
            "out": nn.Conv1d(gate_channels // 2, residual_channels, 1),
            "skip": nn.Conv1d(gate_channels // 2, skip_channels, 1),
        }) for dilation in self.dilations)
        self.head1 = nn.Conv1d(skip_channels, skip_channels, 1)
        self.head2 = nn.Conv1d(skip_channels, num_levels, 1)

    @property
    def receptive_field(self) -> int:
        """Samples of history each output sees."""
        result: int = (self.kernel - 1) * sum(self.dilations) + 1
        return result

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bins = (x + 1) * (self.num_levels - 1) / 2  # the original's scalar input
        silence = (self.num_levels - 1) / 2
        h = self.input(F.pad(bins[:, :-1], (1, 0), value=silence).unsqueeze(1))
        skips = torch.zeros((), dtype=x.dtype, device=x.device)
        for block, dilation in zip(self.blocks, self.dilations, strict=True):
            assert isinstance(block, nn.ModuleDict)
            gate = block["conv"](F.pad(h, ((self.kernel - 1) * dilation, 0)))
            filt, sig = gate.chunk(2, dim=1)
            z = torch.tanh(filt) * torch.sigmoid(sig)
            skips = skips + block["skip"](z)
            h = (block["out"](z) + h) * math.sqrt(0.5)
        out = self.head2(F.relu(self.head1(F.relu(skips * math.sqrt(1 / len(self.blocks))))))
        result: torch.Tensor = out.transpose(1, 2)
        return result


class WaveNetLevel:
    """One level's network: the smoothed conditional of `smoothing`, like `wavenet`'s."""

    def __init__(self, net: VocoderWaveNetNet, levels: torch.Tensor) -> None:
        self.net, self.levels = net, levels

    def smoothed_log_prob(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        return smoothed_log_prob_from_logits(self.net(x), x, self.levels.to(x), sigma)


def original_key_map(layers: int) -> dict[str, str]:
    """wavenet_vocoder's parameter names (weight norm folded) -> `VocoderWaveNetNet`'s."""
    names = {"first_conv": "input", "last_conv_layers.1": "head1",
             "last_conv_layers.3": "head2"}
    for i in range(layers):
        names |= {f"conv_layers.{i}.conv": f"blocks.{i}.conv",
                  f"conv_layers.{i}.conv1x1_out": f"blocks.{i}.out",
                  f"conv_layers.{i}.conv1x1_skip": f"blocks.{i}.skip"}
    return {f"{old}.{p}": f"{new}.{p}" for old, new in names.items() for p in ("weight", "bias")}


def _released_config(source: Path, options: dict[str, Any]) -> dict[str, Any]:
    """Sizes and audio format from the ``config.json`` beside the levels (the originals'
    egs/*/config.json, in `source` or its parent), else from `options`."""
    found = [path for path in (source / "config.json", source.parent / "config.json")
             if path.exists()]
    hparams = json.loads(found[0].read_text()) if found else {}
    sizes = {**ORIGINAL_SIZES, **{key: hparams[key] for key in ORIGINAL_SIZES
                                  if key in hparams}}
    if "skip_out_channels" in hparams:
        sizes["skip_channels"] = hparams["skip_out_channels"]
    quantization = options.get("quantization") or INPUT_TYPES.get(hparams.get("input_type", ""))
    if quantization not in ("mulaw", "linear"):
        raise CheckpointError(
            f"no config.json in {source} or its parent says the audio format: give "
            "--set quantization=mulaw (super-resolution, inpainting) or quantization=linear "
            "(separation)")
    return {"sizes": {**sizes, **{k: int(v) for k, v in options.items() if k in sizes}},
            "quantization": quantization,
            "num_levels": int(hparams.get("quantize_channels", 256)),
            "sample_rate": int(options.get("sample_rate", hparams.get("sample_rate", 22050))),
            "crop": int(hparams.get("max_time_steps", 10240)), "config_file": found[:1]}


def level_folders(source: Path, allow_missing: bool) -> dict[float, Path]:
    """``{sigma in bins: checkpoint file}`` of a released folder, all 24 levels unless
    `allow_missing`; a CheckpointError lists what is absent."""
    if not source.is_dir():
        raise CheckpointError(f"{source} is not a folder of released levels "
                              f"(checkpoints175pt9/{LEVEL_FILE}, ...)")
    levels: dict[float, Path] = {}
    for folder in sorted(source.iterdir()):
        match = LEVEL_FOLDER.match(folder.name)
        if match:
            levels[float(f"{match[1]}.{match[2]}")] = folder / LEVEL_FILE
    no_file = [str(path) for path in levels.values() if not path.exists()]
    absent = [f"checkpoints{str(b).replace('.', 'pt')}" for b in RELEASED_BINS
              if b not in levels]
    if no_file or not levels or (absent and not allow_missing):
        raise CheckpointError(
            f"{source} is not a complete released WaveNet folder:"
            + (f"\n  level folders without {LEVEL_FILE}: {', '.join(no_file)}" if no_file else "")
            + (f"\n  missing levels ({len(absent)} of {len(RELEASED_BINS)}): "
               f"{', '.join(absent)}" if absent else "")
            + ("\n  (--set allow_missing_levels=true imports the levels present)"
               if absent and levels else ""))
    return levels


class PnFWaveNet(LevelBank):
    """The released PnF WaveNets, one per level; ``checkpoint=BANK`` (`arbench import`)."""

    net_class = VocoderWaveNetNet

    @classmethod
    def level_network(cls, net: nn.Module, dataset: Dataset) -> WaveNetLevel:
        assert isinstance(net, VocoderWaveNetNet)
        return WaveNetLevel(net, level_values(discrete_levels(dataset)))

    @classmethod
    def fits(cls, trained: tuple[int, ...], shape: tuple[int, ...]) -> bool:
        """A released level's network runs on clips of any length."""
        return len(shape) == 1  # any clip length

    @classmethod
    def check_data(cls, record: dict[str, Any], dataset: Dataset) -> None:
        data = record.get("data", {})
        quantization = getattr(dataset.params, "quantization", "linear")
        rate = getattr(dataset, "sample_rate", None)
        if quantization != data.get("quantization") or rate != data.get("sample_rate"):
            raise CheckpointError(
                f"the bank was trained on {data.get('quantization')} audio at "
                f"{data.get('sample_rate')} Hz; dataset '{dataset.name}' gives {quantization} "
                f"at {rate} Hz. Run on wavdir with --set wavdir.quantization="
                f"{data.get('quantization')} --set wavdir.sample_rate={data.get('sample_rate')}")

    @classmethod
    def import_released(cls, source: Path, out: Path, *, family: str,
                        **options: Any) -> Path:
        """Import a released folder of levels (``egs/mulaw_maxaudio/supra_piano``) as a bank."""
        known = {"quantization", "sample_rate", "allow_missing_levels", *ORIGINAL_SIZES}
        if set(options) - known:
            raise ValueError(f"unknown import option(s) {sorted(set(options) - known)}; "
                             f"known: {', '.join(sorted(known))}")
        format_ = _released_config(source, options)
        sizes, num_levels = format_["sizes"], format_["num_levels"]
        allow = str(options.get("allow_missing_levels", "false")).lower() in ("1", "true")
        config = {"num_levels": num_levels, "shape": [format_["crop"]], **sizes}
        target = VocoderWaveNetNet(**config).state_dict()
        members = []
        for bins, path in sorted(level_folders(Path(source), allow).items(), reverse=True):
            state = fold_weight_norm(read_state_dict(path))
            weights = map_exactly(path, state, original_key_map(sizes["layers"]), target)
            sigma = bins * 2 / (num_levels - 1)  # bins -> data units
            members.append((sigma, config, weights, {
                "command": f"arbench import {family} {source}", "sigma_bins": bins,
                "source": source_record([path, *format_["config_file"]]),
                "num_parameters": sum(t.numel() for t in weights.values()),
            }))
        data = {key: format_[key] for key in ("quantization", "sample_rate", "crop")}
        return write_bank(out, family, members, {"data": data, "source": str(source)})

