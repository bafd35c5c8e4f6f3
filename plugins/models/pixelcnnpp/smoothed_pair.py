"""Distribution smoothing with PixelCNN++ (Meng et al., 2021): the CIFAR-10 pair.

- p(x~): a PixelCNN++ fed the noisy image x~ = x + sigma * eps, predicting each
  clean pixel with a DMoL whose green and blue means follow the noisy red and
  green; each channel's 256-bin distribution convolved with N(0, sigma^2) is
  then the density of x~ (`dmol.smoothed_log_prob`), differentiable in x~ for
  single-step denoising. Trained on the clean target, as the digits pair is
  (`pixelcnn.smoothed_pair`): the same optimum as the likelihood of x~, with less
  variance.
- p(x | x~): a PixelCNN++ over the clean image that sees all of x~ through an
  unmasked convolution stack projected into every gated block (the original
  concatenates x~ and x into one network; this is the same factorisation).

Both are trained together at `sigma` (0.3 in [-1, 1] units, the original's
CIFAR-10 and CelebA value; 0.5 for MNIST) and the checkpoint is selected by
the validation ELBO. Sizes are the `pixelcnnpp` presets, per network.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from arbench import (
    Dataset,
    level_values,
    load_for,
    rebuild_command,
    save_checkpoint,
    split_train_val,
    training_options,
)
from arbench_plugins.models.distribution_smoothing.fitting import fit
from arbench_plugins.models.distribution_smoothing.pair import SmoothedPair
from arbench_plugins.models.pixelcnnpp import dmol
from arbench_plugins.models.pixelcnnpp.cache import RowBands
from arbench_plugins.models.pixelcnnpp.model import ARCH_DEFAULTS, SIZES, architecture, image_bits
from arbench_plugins.models.pixelcnnpp.model import PRESETS as PIXELCNNPP_PRESETS
from arbench_plugins.models.pixelcnnpp.net import PixelCNNPPNet, typed
from arbench_plugins.models.pnf.noise_conditioned import discrete_levels

TRAIN_DEFAULTS: dict[str, Any] = {
    **ARCH_DEFAULTS, "embed": 32, "sigma": 0.3, "steps": 200000, "batch_size": 16,
    "lr": 2e-4, "eval_every": 1000, "val_fraction": 0.1, "val_max": 500,
    "val_elbo_samples": 1,
}
TEST_ELBO_SAMPLES = 4
PRESETS = {**PIXELCNNPP_PRESETS, "tiny": {**SIZES["tiny"], "steps": 4, "eval_every": 2}}


class NoisyNet(nn.Module):
    """p(x~)'s network: noisy images ``(B, C, H, W)`` -> the clean pixels' DMoL."""

    def __init__(self, shape: list[int], num_levels: int, **sizes: Any) -> None:
        super().__init__()
        self.net = PixelCNNPPNet(shape, num_levels, **sizes)

    def forward(self, noisy: torch.Tensor) -> dmol.Mixture:
        return dmol.Mixture.from_output(self.net(noisy), noisy.shape[1])


class ReverseNet(nn.Module):
    """p(x | x~)'s network: clean values and the whole noisy image -> the clean DMoL."""

    def __init__(self, shape: list[int], num_levels: int, embed: int, **sizes: Any) -> None:
        super().__init__()
        channels = shape[0]
        self.condition = nn.Sequential(
            nn.Conv2d(channels, embed, 3, padding=1), nn.ELU(),
            nn.Conv2d(embed, embed, 3, padding=1), nn.ELU(),
            nn.Conv2d(embed, embed, 3, padding=1),
        )
        self.net = PixelCNNPPNet(shape, num_levels, cond_channels=embed, **sizes)

    def forward(self, x: torch.Tensor, noisy: torch.Tensor) -> dmol.Mixture:
        return dmol.Mixture.from_output(self.net(x, self.condition(noisy)), x.shape[1])


def _networks(config: dict[str, Any]) -> nn.ModuleDict:
    arch = {key: value for key, value in config.items() if key not in ("sigma", "embed")}
    return nn.ModuleDict({"noisy": NoisyNet(**arch),
                          "reverse": ReverseNet(embed=config["embed"], **arch)})


class SmoothedPixelCNNPP(SmoothedPair):
    """The trained pair; ``checkpoint=PATH`` (none is shipped)."""

    def __init__(self, nets: nn.ModuleDict, config: dict[str, Any], **params: Any) -> None:
        super().__init__(**params)
        self.nets, self.sigma, self.shape = nets, config["sigma"], tuple(config["shape"])
        self.num_levels = config["num_levels"]
        weight = next(nets.parameters())
        self.levels = level_values(self.num_levels, dtype=weight.dtype, device=weight.device)

    @property
    def dims(self) -> int:
        """Values per clean example: what one draw of `sample_clean` costs in calls."""
        return math.prod(self.shape)

    def continuous(self, x: torch.Tensor) -> torch.Tensor:
        return self.levels[x]

    def noisy_log_prob(self, noisy: torch.Tensor) -> torch.Tensor:
        mixture = self.nets["noisy"](noisy)
        return dmol.smoothed_log_prob(mixture, noisy, self.sigma, self.num_levels).sum((1, 2))

    def clean_log_prob(self, x: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
        mixture = self.nets["reverse"](self.levels[x], noisy)
        return dmol.log_prob(mixture, x, self.num_levels).sum((1, 2))

    def _pixel_by_pixel(self, bands: RowBands, sigma: float, generator: torch.Generator
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """Levels and fed values drawn pixel by pixel, one row-band step each."""
        n = bands.x.shape[0]
        values = self.levels.new_zeros(n, *self.shape)
        x = torch.zeros(n, *self.shape, dtype=torch.long, device=values.device)
        for i in range(self.shape[1]):
            for j in range(self.shape[2]):
                levels, given = dmol.sample(bands.mixture(i, j), self.num_levels, generator,
                                            sigma)
                x[:, :, i, j], values[:, :, i, j] = levels[..., 0, 0], given[..., 0, 0]
                bands.set_pixel(i, j, values[:, :, i, j])
        return x, values

    @torch.no_grad()
    def sample_noisy(self, n: int, generator: torch.Generator) -> torch.Tensor:
        bands = RowBands(typed(self.nets["noisy"], NoisyNet).net, n, None)
        return self._pixel_by_pixel(bands, self.sigma, generator)[1]

    @torch.no_grad()
    def sample_clean(self, noisy: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        reverse = typed(self.nets["reverse"], ReverseNet)
        bands = RowBands(reverse.net, len(noisy), reverse.condition(noisy))
        return self._pixel_by_pixel(bands, 0.0, generator)[0]

    def training_loss(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Both networks' NLL of the clean pixels, in nats per value."""
        clean = self.levels[x]
        noisy = clean + self.sigma * torch.randn(clean.shape, generator=generator).to(clean)
        nll = -(dmol.log_prob(self.nets["noisy"](noisy), x, self.num_levels, given=noisy)
                + dmol.log_prob(self.nets["reverse"](clean, noisy), x, self.num_levels))
        return nll.sum((1, 2)).mean() / self.dims

    @classmethod
    def load(cls, dataset: Dataset, device: torch.device, *, family: str,
             checkpoint: Path | None, **params: Any) -> SmoothedPixelCNNPP:
        state = load_for(checkpoint, dataset, device)
        nets = _networks(state["config"])
        nets.load_state_dict(state["state_dict"])
        return cls(nets.to(device).eval(), state["config"], **params)

    @classmethod
    def train(cls, dataset: Dataset, out: Path, seed: int = 0, *, family: str,
              **options: Any) -> Path:
        opts = training_options(options, TRAIN_DEFAULTS, PRESETS)
        config = {"shape": list(dataset.shape), "num_levels": discrete_levels(dataset),
                  "embed": opts["embed"], "sigma": opts["sigma"], **architecture(opts)}
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        device = torch.device(opts["device"] or "cpu")
        pair = cls(_networks(config).to(device), config)
        train, val = split_train_val(dataset.load("train"), opts["val_fraction"], generator,
                                     max_val=opts["val_max"])

        def negative_elbo_bpd(x: torch.Tensor, samples: int) -> float:
            fixed = torch.Generator(device).manual_seed(0)
            return image_bits(torch.cat([pair.elbo(chunk.to(device), samples, fixed).cpu()
                                         for chunk in x.split(64)]), pair.dims)

        best, step, result = fit(pair.nets, lambda batch: pair.training_loss(batch, generator),
                                 lambda: negative_elbo_bpd(val, opts["val_elbo_samples"]),
                                 train, opts, generator, out, seed)
        test_bpd = negative_elbo_bpd(dataset.load("test"), TEST_ELBO_SAMPLES)
        metadata = {
            "command": rebuild_command(family, dataset.name, seed, options),
            "seed": seed, "options": opts, "best_step": step,
            "val_negative_elbo_bpd": round(best, 4),
            "test_negative_elbo_bpd": round(test_bpd, 4),
            "num_parameters": sum(p.numel() for p in pair.nets.parameters()),
            "train_seconds": result.seconds, "training": result.cost,
            "torch_version": torch.__version__,
        }
        print(f"test -ELBO {test_bpd:.4f} bits/dim", flush=True)
        return save_checkpoint(Path(out), config, pair.nets.state_dict(), metadata)
