"""Importing the PnF originals' released weights: the round trip and the refusals.

No real files here: each test builds the original architecture from its
published structure (wavenet_vocoder's WaveNet, pixel-cnn-pp's PixelCNN++),
with weight normalisation as there and random weights, saves it in the
originals' layout (nested ``state_dict``, ``module.`` prefix, per-level folder
or file names), imports it and compares arbench's network with the reference
forward pass.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import weight_norm

from arbench.errors import CheckpointError
from arbench.results.record import Record
from arbench.training.checkpoints import load_for
from arbench_plugins.models.pnf.released import ImportRefused
from arbench_plugins.models.wavenet.released import RELEASED_BINS, PnFWaveNet, VocoderWaveNetNet

SIZES = {"layers": 4, "stacks": 2, "residual_channels": 6, "gate_channels": 8,
         "skip_channels": 5, "kernel_size": 3}


class ReferenceWaveNet(nn.Module):
    """wavenet_vocoder's scalar-input WaveNet, as published: weight-normalised 1x1 and
    dilated convolutions (padded both sides, cut to T), residual (x + r) * sqrt(1/2),
    skips summed and scaled by sqrt(1/L), ReLU-1x1-ReLU-1x1 head."""

    def __init__(self, layers: int, stacks: int, residual_channels: int, gate_channels: int,
                 skip_channels: int, kernel_size: int, out_channels: int = 256) -> None:
        super().__init__()
        self.first_conv = weight_norm(nn.Conv1d(1, residual_channels, 1))
        self.conv_layers = nn.ModuleList()
        for layer in range(layers):
            dilation = 2 ** (layer % (layers // stacks))
            block = nn.Module()
            block.conv = weight_norm(nn.Conv1d(residual_channels, gate_channels, kernel_size,
                                               padding=(kernel_size - 1) * dilation,
                                               dilation=dilation))
            block.conv1x1_out = weight_norm(nn.Conv1d(gate_channels // 2, residual_channels, 1))
            block.conv1x1_skip = weight_norm(nn.Conv1d(gate_channels // 2, skip_channels, 1))
            self.conv_layers.append(block)
        self.last_conv_layers = nn.ModuleList([
            nn.ReLU(), weight_norm(nn.Conv1d(skip_channels, skip_channels, 1)), nn.ReLU(),
            weight_norm(nn.Conv1d(skip_channels, out_channels, 1))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, T) bins -> (B, K, T)
        h, skips = self.first_conv(x), 0
        for block in self.conv_layers:
            z = block.conv(h)[:, :, :h.shape[-1]]
            a, b = z.split(z.shape[1] // 2, dim=1)
            z = torch.tanh(a) * torch.sigmoid(b)
            skips = skips + block.conv1x1_skip(z)
            h = (block.conv1x1_out(z) + h) * math.sqrt(0.5)
        out = skips * math.sqrt(1.0 / len(self.conv_layers))
        for layer in self.last_conv_layers:
            out = layer(out)
        return out


def _randomise(net: nn.Module, seed: int) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.3 + (p.dim() == 1) * 0.0)
    return net.eval()


def _released_wavenets(root: Path, bins: tuple[float, ...] = RELEASED_BINS
                       ) -> dict[float, ReferenceWaveNet]:
    """A released folder as the originals lay it out, with a config.json beside it."""
    root.mkdir(parents=True)
    (root.parent / "config.json").write_text(
        '{"input_type": "mulaw-quantize", "sample_rate": 22050, "quantize_channels": 256, '
        '"layers": 4, "stacks": 2, "residual_channels": 6, "gate_channels": 8, '
        '"skip_out_channels": 5, "kernel_size": 3, "max_time_steps": 10240}')
    nets = {}
    for index, level in enumerate(bins):
        net = _randomise(ReferenceWaveNet(**SIZES), index)
        folder = root / f"checkpoints{str(level).replace('.', 'pt')}"
        folder.mkdir()
        state = {f"module.{key}": value for key, value in net.state_dict().items()}
        torch.save({"state_dict": state, "global_step": 1000}, folder / "checkpoint_latest_ema.pth")
        nets[level] = net
    return nets


def test_wavenet_import_round_trip_matches_the_reference(tmp_path: Path) -> None:
    nets = _released_wavenets(tmp_path / "egs" / "supra_piano")
    bank = PnFWaveNet.import_released(
            tmp_path / "egs" / "supra_piano", tmp_path / "bank", family="pnf-wavenet")
    x = torch.rand(2, 300, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for level in (RELEASED_BINS[0], RELEASED_BINS[-1]):
        index = sorted(RELEASED_BINS, reverse=True).index(level)
        state = load_for(bank / f"level-{index:02d}.pt", _FakeAudio(), "cpu",
                         PnFWaveNet.fits)
        ours = VocoderWaveNetNet(**state["config"])
        ours.load_state_dict(state["state_dict"])
        ours.eval()
        bins = (x + 1) * 127.5
        with torch.no_grad():
            reference = nets[level](bins[:, None, :-1])  # predicts x_{t+1} from x_<=t
            logits = ours(x)
        # Row t >= 1 is the original's output t - 1; the first receptive field differs
        # only by what stands before the clip (arbench: silence; there: zero padding).
        start = ours.receptive_field
        torch.testing.assert_close(logits[:, start:], reference.transpose(1, 2)[:, start - 1:],
                                   rtol=1e-5, atol=1e-5)


class _FakeAudio:
    name, shape, num_levels, params = "wavdir", (300,), 256, {}


def test_wavenet_import_refuses_missing_levels_and_misshaped_keys(tmp_path: Path) -> None:
    _released_wavenets(tmp_path / "a" / "piano", bins=RELEASED_BINS[:3])
    with pytest.raises(CheckpointError, match=r"missing levels \(21 of 24\)"):
        PnFWaveNet.import_released(
            tmp_path / "a" / "piano", tmp_path / "bank-a", family="pnf-wavenet")
    _released_wavenets(tmp_path / "b" / "piano")
    bad = tmp_path / "b" / "piano" / "checkpoints0pt1" / "checkpoint_latest_ema.pth"
    state = torch.load(bad, weights_only=True)
    state["state_dict"]["module.extra.weight"] = torch.zeros(1)
    state["state_dict"]["module.first_conv.bias"] = torch.zeros(7)
    del state["state_dict"]["module.last_conv_layers.3.bias"]
    torch.save(state, bad)
    with pytest.raises(ImportRefused) as refused:
        PnFWaveNet.import_released(
            tmp_path / "b" / "piano", tmp_path / "bank-b", family="pnf-wavenet")
    assert refused.value.missing == ["last_conv_layers.3.bias"]
    assert refused.value.unexpected == ["extra.weight"]
    assert refused.value.misshaped == ["first_conv.bias (7,) (expected (6,))"]
    assert not (tmp_path / "bank-b").exists()  # nothing written
    bad.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="not a readable torch file"):
        PnFWaveNet.import_released(
            tmp_path / "b" / "piano", tmp_path / "bank-c", family="pnf-wavenet")


def test_vocoder_net_is_causal() -> None:
    net = _randomise(VocoderWaveNetNet(256, [64], **SIZES), 1)
    x = torch.rand(1, 64) * 2 - 1
    changed = x.clone()
    changed[0, 40] = -x[0, 40]
    with torch.no_grad():
        torch.testing.assert_close(net(x)[:, :41], net(changed)[:, :41])
    assert F.mse_loss(net(x)[:, 41:], net(changed)[:, 41:]).item() > 0


# -- PixelCNN++ (pixel-cnn-pp's layout) ------------------------------------------------------


def _concat_elu(x: torch.Tensor) -> torch.Tensor:
    return F.elu(torch.cat([x, -x], 1))


class RefConv(nn.Module):
    """down_shifted_conv2d / down_right_shifted_conv2d (weight norm, shift optional)."""

    def __init__(self, cin: int, cout: int, size: tuple[int, int], right: bool,
                 stride: int = 1, shift: bool = False) -> None:
        super().__init__()
        self.conv = weight_norm(nn.Conv2d(cin, cout, size, stride))
        self.pad = (size[1] - 1, 0, size[0] - 1, 0) if right else (
            (size[1] - 1) // 2, (size[1] - 1) // 2, size[0] - 1, 0)
        self.right, self.shift = right, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(F.pad(x, self.pad))
        if not self.shift:
            return x
        if self.right:
            return F.pad(x[..., :-1], (1, 0, 0, 0))
        return F.pad(x[:, :, :-1], (0, 0, 1, 0))


class RefDeconv(nn.Module):
    def __init__(self, filters: int, size: tuple[int, int], right: bool) -> None:
        super().__init__()
        self.deconv = weight_norm(nn.ConvTranspose2d(filters, filters, size, 2,
                                                     output_padding=1))
        self.size, self.right = size, right

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.deconv(x)
        h, w = x.shape[2], x.shape[3]
        if self.right:
            return x[:, :, :h - self.size[0] + 1, :w - self.size[1] + 1]
        side = (self.size[1] - 1) // 2
        return x[:, :, :h - self.size[0] + 1, side:w - side]


class RefNin(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.lin_a = weight_norm(nn.Linear(cin, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin_a(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class RefGated(nn.Module):
    def __init__(self, filters: int, right: bool, skip: int) -> None:
        super().__init__()
        size = (2, 2) if right else (2, 3)
        self.conv_input = RefConv(2 * filters, filters, size, right)
        if skip:
            self.nin_skip = RefNin(2 * skip * filters, filters)
        self.conv_out = RefConv(2 * filters, 2 * filters, size, right)

    def forward(self, x: torch.Tensor, a: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv_input(_concat_elu(x))
        if a is not None:
            h = h + self.nin_skip(_concat_elu(a))
        a_, b = self.conv_out(_concat_elu(h)).chunk(2, 1)
        return x + a_ * torch.sigmoid(b)


class RefLayer(nn.Module):
    def __init__(self, count: int, filters: int, skips: tuple[int, int]) -> None:
        super().__init__()
        self.u_stream = nn.ModuleList(RefGated(filters, False, skips[0]) for _ in range(count))
        self.ul_stream = nn.ModuleList(RefGated(filters, True, skips[1]) for _ in range(count))


class ReferencePixelCNNPP(nn.Module):
    """pixel-cnn-pp's PixelCNN, as published (module names, weight norm, the nin head)."""

    def __init__(self, nr_resnet: int, nr_filters: int, nr_logistic_mix: int) -> None:
        super().__init__()
        f = nr_filters
        self.up_layers = nn.ModuleList(RefLayer(nr_resnet, f, (0, 1)) for _ in range(3))
        self.down_layers = nn.ModuleList(RefLayer(n, f, (1, 2))
                                         for n in (nr_resnet, nr_resnet + 1, nr_resnet + 1))
        self.downsize_u_stream = nn.ModuleList(RefConv(f, f, (2, 3), False, 2) for _ in "ab")
        self.downsize_ul_stream = nn.ModuleList(RefConv(f, f, (2, 2), True, 2) for _ in "ab")
        self.upsize_u_stream = nn.ModuleList(RefDeconv(f, (2, 3), False) for _ in "ab")
        self.upsize_ul_stream = nn.ModuleList(RefDeconv(f, (2, 2), True) for _ in "ab")
        self.u_init = RefConv(4, f, (2, 3), False, shift=True)
        self.ul_init = nn.ModuleList([RefConv(4, f, (1, 3), False, shift=True),
                                      RefConv(4, f, (2, 1), True, shift=True)])
        self.nin_out = RefNin(f, 10 * nr_logistic_mix)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x, torch.ones_like(x[:, :1])], 1)
        us, uls = [self.u_init(x)], [self.ul_init[0](x) + self.ul_init[1](x)]
        for i in range(3):
            for u_block, ul_block in zip(self.up_layers[i].u_stream,
                                         self.up_layers[i].ul_stream, strict=True):
                us.append(u_block(us[-1]))
                uls.append(ul_block(uls[-1], a=us[-1]))
            if i != 2:
                us.append(self.downsize_u_stream[i](us[-1]))
                uls.append(self.downsize_ul_stream[i](uls[-1]))
        u, ul = us.pop(), uls.pop()
        for i in range(3):
            for u_block, ul_block in zip(self.down_layers[i].u_stream,
                                         self.down_layers[i].ul_stream, strict=True):
                u = u_block(u, a=us.pop())
                ul = ul_block(ul, a=torch.cat([u, uls.pop()], 1))
            if i != 2:
                u, ul = self.upsize_u_stream[i](u), self.upsize_ul_stream[i](ul)
        return self.nin_out(F.elu(ul))


def _released_pixelcnns(root: Path, sigmas: tuple[float, ...]) -> dict[float, nn.Module]:
    root.mkdir()
    nets = {}
    for index, sigma in enumerate(sigmas):
        net = _randomise(ReferencePixelCNNPP(1, 8, 2), index)
        state = {f"module.{k}": v for k, v in net.state_dict().items()}
        torch.save(state, root / f"pcnn_input_sigma:{sigma:.5f}_lr:0.00040_nr-resnet1_"
                                  f"nr-filters8_9.pth")
        nets[sigma] = net
    return nets


def test_pixelcnnpp_import_round_trip_matches_the_reference(tmp_path: Path) -> None:
    from arbench_plugins.models.pixelcnnpp import dmol
    from arbench_plugins.models.pixelcnnpp.net import PixelCNNPPNet
    from arbench_plugins.models.pixelcnnpp.released import RELEASED_SIGMAS, PnFPixelCNNPP

    nets = _released_pixelcnns(tmp_path / "finetuned", RELEASED_SIGMAS)
    bank = PnFPixelCNNPP.import_released(
            tmp_path / "finetuned", tmp_path / "bank", family="pnf-pixelcnn++")
    state = torch.load(bank / "level-00.pt", weights_only=True)
    ours = PixelCNNPPNet(**state["config"])
    ours.load_state_dict(state["state_dict"])
    ours.eval()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        reference = nets[1.0](x)  # (B, 10 M, H, W) in pixel-cnn-pp's order
        mixture = dmol.Mixture.from_output(ours(x), 3)
    m = 2
    l_ref = reference.permute(0, 2, 3, 1)
    torch.testing.assert_close(mixture.logits.permute(0, 2, 3, 1), l_ref[..., :m],
                               rtol=1e-5, atol=1e-5)
    rest = l_ref[..., m:].reshape(2, 32, 32, 3, 3 * m)  # per channel: means, scales, coeffs
    torch.testing.assert_close(mixture.means.permute(0, 3, 4, 1, 2), rest[..., :m],
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mixture.log_scales.permute(0, 3, 4, 1, 2),
                               rest[..., m:2 * m].clamp(min=-7.0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mixture.coeffs.permute(0, 3, 4, 1, 2),
                               torch.tanh(rest[..., 2 * m:]), rtol=1e-5, atol=1e-5)


def test_pixelcnnpp_import_lists_missing_levels(tmp_path: Path) -> None:
    from arbench_plugins.models.pixelcnnpp.released import RELEASED_SIGMAS, PnFPixelCNNPP

    _released_pixelcnns(tmp_path / "finetuned", RELEASED_SIGMAS[:17])
    with pytest.raises(CheckpointError, match=r"missing levels \(2 of 19\): sigma 0.01292, "
                                              r"0.01000"):
        PnFPixelCNNPP.import_released(
            tmp_path / "finetuned", tmp_path / "bank", family="pnf-pixelcnn++")


def test_paper_superres_suite_runs_on_an_imported_bank(tmp_path: Path) -> None:
    """From the released layout to the table: import, then the paper suite, reduced."""

    import numpy as np
    import soundfile
    from conftest import run_cli

    _released_wavenets(tmp_path / "egs" / "supra_piano")
    audio = tmp_path / "audio"
    audio.mkdir()
    t = np.arange(22050) / 22050
    for i in range(3):
        soundfile.write(audio / f"note{i}.wav", 0.4 * np.sin(2 * np.pi * (220 + 60 * i) * t),
                        22050)
    imported = run_cli(["import", "pnf-wavenet", str(tmp_path / "egs" / "supra_piano"),
                        "--out", str(tmp_path / "bank")], cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    run = run_cli(["run", "--suite", "paper-pnf-superres", "--data-dir", str(audio),
                   "--set", f"pnf-wavenet.checkpoint={tmp_path / 'bank'}", "--budget", "24",
                   "--seed", "0", "--set", "superres.n_examples=1",
                   "--set", "wavdir.clip_length=512", "--name", "paper", "--timing-repeats", "0"],
                  cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "The paper's figures beside ours" in run.stdout
    records = [Record.model_validate_json(p.read_bytes())
               for p in (tmp_path / "results/paper/cells").glob("*")]
    pnf = [r for r in records if r.identity.sampler == "pnf"]
    assert len(pnf) == 3 and all(r.status == "ok" and r.cost.nfe == 24 for r in pnf)
    linear = run_cli(["run", "--suite", "paper-pnf-superres", "--data-dir", str(audio),
                      "--set", f"pnf-wavenet.checkpoint={tmp_path / 'bank'}", "--budget", "24",
                      "--seed", "0", "--set", "wavdir.quantization=linear", "--name", "lin"],
                     cwd=tmp_path)
    assert "trained on mulaw audio at 22050 Hz" in linear.stdout + linear.stderr
