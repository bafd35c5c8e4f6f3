"""PixelCNN++ as the PnF image prior: one network conditioned on the noise level.

`PixelCNNPP` (``pixelcnn++``) is the network of `net` (this package) with a
sigma embedding projected into every gated block, trained like the other
noise-conditioned models (`smoothing.NoiseConditionedAR`): the input is
x + sigma * eps with sigma log-uniform in [sigma_min, sigma_max] (or 0 with
probability p_clean), the target the clean pixel, the means of green and blue
conditioned on the noisy red and green the network is fed. sigma = 0 is the
exact PixelCNN++ (`log_prob`, bits/dim); sigma > 0 gives PnF's smoothed
likelihood by convolving each channel's 256-bin DMoL with N(0, sigma^2)
(`dmol.smoothed_log_prob`). ``--set sigma_max=0`` trains the plain model.

Sizes are named presets: ``cifar10`` (the original's nr_resnet 5, nr_filters
160, 10 mixtures, dropout 0.5), ``mnist`` (nr_filters 40) and ``tiny`` for CPU
tests; any size can be overridden (``--set nr_filters=80``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from arbench import (
    Dataset,
    Model,
    TrainingLoop,
    epoch_batches,
    level_values,
    load_for,
    loop_options,
    partial_path,
    rebuild_command,
    save_checkpoint,
    split_train_val,
    training_options,
)
from arbench_plugins.models.pixelcnnpp import dmol
from arbench_plugins.models.pixelcnnpp.cache import RowBands
from arbench_plugins.models.pixelcnnpp.net import PixelCNNPPNet
from arbench_plugins.models.pnf.noise_conditioned import (
    PerSourcePriors,
    SigmaEmbedding,
    _training_sigmas,
    discrete_levels,
    quantize,
)

SIZES: dict[str, dict[str, Any]] = {
    "cifar10": {"nr_resnet": 5, "nr_filters": 160, "mixtures": 10, "dropout": 0.5},
    "mnist": {"nr_resnet": 5, "nr_filters": 40, "mixtures": 10, "dropout": 0.5},
    "tiny": {"nr_resnet": 1, "nr_filters": 16, "mixtures": 2, "dropout": 0.0},
}
ARCH_KEYS = ("nr_resnet", "nr_filters", "mixtures", "dropout")
ARCH_DEFAULTS: dict[str, Any] = {"preset": "cifar10", **SIZES["cifar10"]}
# The original's Polyak average of the weights (decay 0.9995) in its presets; tiny: seconds
PRESETS = {"cifar10": {**SIZES["cifar10"], "ema": 0.9995},
           "mnist": {**SIZES["mnist"], "ema": 0.9995},
           "tiny": {**SIZES["tiny"], "epochs": 2}}
TRAIN_DEFAULTS: dict[str, Any] = {
    **ARCH_DEFAULTS, "embed": 32, "epochs": 500, "patience": 20, "lr": 2e-4,
    "batch_size": 16, "val_fraction": 0.1, "val_max": 1000, "val_sigmas": [0.01, 0.1],
    "sigma_min": 0.01, "sigma_max": 1.0, "p_clean": 0.2, "max_seconds": math.inf,
}


def architecture(opts: dict[str, Any]) -> dict[str, Any]:
    """The network's sizes among the training options (a preset's, or set one by one)."""
    return {key: opts[key] for key in ARCH_KEYS}


def image_bits(log_p: torch.Tensor, dims: int) -> float:
    """Mean NLL in bits/dim of per-example log-probabilities in nats."""
    return -log_p.double().mean().item() / (dims * math.log(2))


class SigmaPixelCNNPP(nn.Module):
    """``net(x, sigma)``: continuous images ``(B, C, H, W)`` and sigma ``(B,)`` -> DMoL."""

    def __init__(self, shape: list[int], num_levels: int, embed: int,
                 **sizes: Any) -> None:
        super().__init__()
        self.sigma = SigmaEmbedding(embed)
        self.net = PixelCNNPPNet(shape, num_levels, cond_channels=embed, **sizes)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> dmol.Mixture:
        cond = self.sigma(sigma.to(x.dtype))[:, :, None, None]
        return dmol.Mixture.from_output(self.net(x, cond), x.shape[1])


class PixelValues:
    """Ancestral sampling's cache (`Model.incremental`): one row-band step per pixel
    (`RowBands`), whose mixture gives all three channels' logits in turn."""

    def __init__(self, bands: RowBands, shape: tuple[int, ...], levels: torch.Tensor) -> None:
        self.bands, self.levels, self.t = bands, levels, 0
        self.channels, self.width = shape[0], shape[2]
        self.pixel = torch.zeros(bands.x.shape[0], shape[0], dtype=torch.long,
                                 device=levels.device)
        self.mixture: dmol.Mixture | None = None

    def logits(self, previous: torch.Tensor | None) -> torch.Tensor:
        """``(n, K)`` logits of the next value in `value_order` given the one drawn before."""
        location, channel = divmod(self.t, self.channels)
        if previous is not None:
            self.pixel[:, (channel - 1) % self.channels] = previous
        if channel == 0:
            if location:
                done = divmod(location - 1, self.width)
                self.bands.set_pixel(*done, self.levels[self.pixel])
            self.mixture = self.bands.mixture(*divmod(location, self.width))
        assert self.mixture is not None
        self.t += 1
        return dmol.channel_logits(self.mixture, self.pixel, channel, len(self.levels))


class PixelCNNPP(Model):
    """The trained noise-conditioned PixelCNN++; ``checkpoint=PATH`` (none is shipped)."""

    provides = frozenset({"noise-conditioned", "causal-conditionals", "causal-logits"})

    def __init__(self, net: SigmaPixelCNNPP, dataset: Dataset, **params: Any) -> None:
        super().__init__(**params)
        self.net, self.shape = net, tuple(dataset.shape)
        self.num_levels = discrete_levels(dataset)
        weight = next(net.parameters())
        self.levels = level_values(self.num_levels, dtype=weight.dtype, device=weight.device)

    def _sigmas(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        return torch.full((x.shape[0],), float(sigma), dtype=x.dtype, device=x.device)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-likelihood in nats of levels ``x (B, C, H, W)`` (sigma 0), ``(B,)``."""
        values = self.levels[x]
        mixture = self.net(values, self._sigmas(values, 0.0))
        return dmol.log_prob(mixture, x, self.num_levels).sum((1, 2))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, D, K)`` over the channel-first flat positions of levels `x`; row i is
        p(x_i | the values before it in `value_order`)."""
        values = self.levels[x]
        mixture = self.net(values, self._sigmas(values, 0.0))
        return dmol.image_logits(mixture, x, self.num_levels).flatten(1, 3)

    def smoothed_log_prob(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        mixture = self.net(x, self._sigmas(x, sigma))
        return dmol.smoothed_log_prob(mixture, x, sigma, self.num_levels).sum((1, 2))

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        return quantize(x, self.levels)

    def value_order(self) -> torch.Tensor:
        """Pixel by pixel in raster order, red, green, blue within each."""
        channels, height, width = self.shape
        return torch.arange(channels * height * width).view(channels, -1).t().flatten()

    def sample_value(self, x: torch.Tensor, i: int, generator: torch.Generator
                     ) -> torch.Tensor:
        channels, height, width = self.shape
        c, h, w = i // (height * width), i // width % height, i % width
        values = self.levels[x]
        pixel = self.net(values, self._sigmas(values, 0.0)).at(h, w)
        logits = dmol.channel_logits(pixel, x[:, :, h, w], c, self.num_levels)
        return torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0]

    def incremental(self, n: int) -> PixelValues:
        weight = next(self.net.parameters())
        sigma = self.net.sigma(weight.new_zeros(n))[:, :, None, None]
        return PixelValues(RowBands(self.net.net, n, sigma), self.shape, self.levels)

    @classmethod
    def load(cls, dataset: Dataset, device: torch.device, *, family: str,
             checkpoint: Path | None, **params: Any) -> Model:
        """The model of `dataset`; for a two-source dataset (cifar10-groups), that one
        model as the prior of both sources, as PnF separates images."""
        if dataset.sources:
            prior = cls.load(dataset.source(dataset.sources[0]), device, family=family,
                             checkpoint=checkpoint, **params)
            return PerSourcePriors(dict.fromkeys(dataset.sources, prior), **params)
        state = load_for(checkpoint, dataset, device)
        net = SigmaPixelCNNPP(**state["config"])
        net.load_state_dict(state["state_dict"])
        return cls(net.to(device).eval(), dataset, **params)

    @classmethod
    def train(cls, dataset: Dataset, out: Path, seed: int = 0, *, family: str,
              **options: Any) -> Path:
        """Fit on noisy inputs; early stopping on a validation slice of train, scored by
        the mean bits/dim at sigma 0 and at each of `val_sigmas` (fixed noise)."""
        opts = training_options(options, TRAIN_DEFAULTS, PRESETS)
        if opts["sigma_max"] <= 0:  # the plain PixelCNN++: clean inputs only
            opts = {**opts, "p_clean": 1.0, "sigma_min": 1.0, "sigma_max": 1.0,
                    "val_sigmas": []}
        config = {"shape": list(dataset.shape), "num_levels": discrete_levels(dataset),
                  "embed": opts["embed"], **architecture(opts)}
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        device = torch.device(opts["device"] or "cpu")
        net = SigmaPixelCNNPP(**config).to(device)
        model = cls(net, dataset)
        train, val = split_train_val(dataset.load("train"), opts["val_fraction"], generator,
                                     max_val=opts["val_max"])
        test = dataset.load("test")
        val_noise = torch.randn(val.shape, generator=generator)
        score_sigmas = [0.0, *opts["val_sigmas"]]

        def nll(batch: torch.Tensor, sigmas: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
            batch, sigmas, noise = batch.to(device), sigmas.to(device), noise.to(device)
            noisy = model.levels[batch] + sigmas.view(-1, 1, 1, 1) * noise
            return -dmol.log_prob(net(noisy, sigmas), batch, model.num_levels,
                                  given=noisy).sum((1, 2))

        def batches(_: int) -> Iterator[tuple[torch.Tensor, ...]]:
            """Each minibatch with its noise levels and noise, drawn with it."""
            for batch in epoch_batches(train, opts["batch_size"], generator):
                yield (batch, _training_sigmas(len(batch), opts, generator),
                       torch.randn(batch.shape, generator=generator))

        def bits(x: torch.Tensor, noise: torch.Tensor, sigma: float) -> float:
            total = torch.cat([nll(chunk, torch.full((len(chunk),), sigma), eps) for chunk, eps
                               in zip(x.split(64), noise.split(64), strict=True)])
            return image_bits(-total.cpu(), dataset.dims)

        def evaluate(_: int) -> tuple[float, dict[str, Any]]:
            scores = {f"sigma {s:g}": bits(val, val_noise, s) for s in score_sigmas}
            return sum(scores.values()) / len(scores), scores

        optimizer = torch.optim.Adam(net.parameters(), lr=opts["lr"])
        result = TrainingLoop(
            net, optimizer, loss=lambda batch, _: nll(*batch).mean() / dataset.dims,
            evaluate=evaluate, periods=opts["epochs"], batches=batches,
            schedule=torch.optim.lr_scheduler.ExponentialLR(optimizer, 0.999995),
            patience=opts["patience"], max_seconds=opts["max_seconds"], generator=generator,
            resume=partial_path(out), fingerprint={"seed": seed, **opts}, splittable=True,
            **loop_options(opts)).run()
        test_bpd = bits(test, torch.zeros(test.shape), 0.0)
        metadata = {
            "command": rebuild_command(family, dataset.name, seed, options),
            "seed": seed, "options": {**opts, "max_seconds": str(opts["max_seconds"])},
            "best_epoch": result.period, "stopped_by": result.stopped_by,
            "val_score": round(result.score, 4),
            "val_bpd_at_sigma": {key.removeprefix("sigma "): round(b, 4)
                                 for key, b in result.details.items()},
            "test_bpd": round(test_bpd, 4),
            "num_parameters": sum(p.numel() for p in net.parameters()),
            "train_seconds": result.seconds, "training": result.cost,
            "torch_version": torch.__version__,
        }
        print(f"best epoch {result.period}: test {test_bpd:.4f} bits/dim", flush=True)
        return save_checkpoint(Path(out), config, net.state_dict(), metadata)
