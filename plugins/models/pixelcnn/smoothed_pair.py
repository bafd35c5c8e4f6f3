"""The smoothed pair on digits: a PixelCNN fitted to smoothed digits and a reverse PixelCNN.

- p(x~): the noise-conditioned PixelCNN of PnF (`NoiseConditionedPixelCNNNet`) trained at
  one sigma. Fed the noisy history x~_<i it predicts the clean level of pixel i;
  convolving that categorical with N(0, sigma^2) is exactly p(x~_i | x~_<i),
  since x~_i = x_i + sigma * eps_i with eps_i independent of the history. So
  its cross-entropy on the clean level is the training loss (the same optimum
  as the likelihood of x~, with less variance), and log p(x~) is differentiable
  in x~ for single-step denoising.
- p(x | x~): a PixelCNN over the clean levels that also sees all of x~ through
  an unmasked convolution stack, added before every residual block (the
  original concatenates x~ and x into one PixelCNN++; this is the same
  factorisation).

Both are trained together at `sigma` (0.3 in data units [-1, 1] by default,
between the original's 0.3 on CIFAR-10 and 0.5 on MNIST), and the checkpoint
is selected by the validation ELBO. The pair has about twice the parameters of
the `pixelcnn` baseline (two networks of its size).
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
    level_values,
    load_for,
    rebuild_command,
    save_checkpoint,
    split_train_val,
    training_options,
)
from arbench_plugins.models.distribution_smoothing.fitting import fit
from arbench_plugins.models.distribution_smoothing.pair import SmoothedPair
from arbench_plugins.models.pixelcnn.noise_conditioned import (
    ARCH_DEFAULTS,
    BiasedPixelCNN,
    NoiseConditionedPixelCNNNet,
)
from arbench_plugins.models.pnf.noise_conditioned import smoothed_log_prob_from_logits

TRAIN_DEFAULTS: dict[str, Any] = {
    **ARCH_DEFAULTS, "sigma": 0.3, "steps": 5000, "batch_size": 64, "lr": 1e-3,
    "eval_every": 100, "val_fraction": 0.1, "val_elbo_samples": 4,
}
TEST_ELBO_SAMPLES = 16


class ReversePixelCNNNet(BiasedPixelCNN):
    """p(x | x~): clean levels ``x (B, 1, H, W)`` in data units and ``noisy`` of the same
    shape -> logits ``(B, H*W, K)``; row i depends on x_<i and on every pixel of x~."""

    def __init__(self, num_levels: int, shape: list[int], channels: int, blocks: int,
                 first_kernel: int, kernel: int) -> None:
        super().__init__()
        self.condition = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels * (blocks + 1), 3, padding=1),
        )
        self.add_trunk(num_levels, shape, channels, blocks, first_kernel, kernel)

    def forward(self, x: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
        return self.trunk(x, self.condition(noisy))


class SmoothedPixelCNN(SmoothedPair):
    """The digits pair; ``checkpoint=None`` loads the shipped one."""

    def __init__(self, nets: nn.ModuleDict, config: dict[str, Any], **params: Any) -> None:
        super().__init__(**params)
        self.nets, self.sigma, self.shape = nets, config["sigma"], tuple(config["shape"])
        weight = next(nets.parameters())
        self.levels = level_values(config["num_levels"], dtype=weight.dtype,
                                   device=weight.device)

    @property
    def dims(self) -> int:
        """Values per clean example: what one draw of `sample_clean` costs in calls."""
        return math.prod(self.shape)

    def continuous(self, x: torch.Tensor) -> torch.Tensor:
        return self.levels[x]

    def _noisy_logits(self, noisy: torch.Tensor) -> torch.Tensor:
        sigma = noisy.new_full((noisy.shape[0],), self.sigma)
        logits: torch.Tensor = self.nets["noisy"](noisy, sigma)
        return logits

    def noisy_log_prob(self, noisy: torch.Tensor) -> torch.Tensor:
        return smoothed_log_prob_from_logits(self._noisy_logits(noisy), noisy, self.levels,
                                             self.sigma)

    def sample_noisy(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Pixel by pixel: a clean level from the categorical, plus sigma * noise."""
        noisy = self.levels.new_zeros(n, *self.shape)
        flat = noisy.view(n, -1)
        for i in range(self.dims):
            probs = self._noisy_logits(noisy)[:, i].softmax(-1)
            level = torch.multinomial(probs, 1, generator=generator)[:, 0]
            eps = torch.randn(n, generator=generator, device=noisy.device)
            flat[:, i] = self.levels[level] + self.sigma * eps
        return noisy

    def _clean_logits(self, x: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = self.nets["reverse"](self.levels[x], noisy)
        return result

    def clean_log_prob(self, x: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
        logits = self._clean_logits(x, noisy)
        return -F.cross_entropy(logits.transpose(1, 2), x.flatten(1), reduction="none").sum(1)

    def sample_clean(self, noisy: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = torch.zeros(noisy.shape, dtype=torch.long, device=noisy.device)
        flat = x.view(x.shape[0], -1)
        for i in range(self.dims):
            probs = self._clean_logits(x, noisy)[:, i].softmax(-1)
            flat[:, i] = torch.multinomial(probs, 1, generator=generator)[:, 0]
        return x

    def training_loss(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Cross-entropy of the clean levels under both networks, per pixel."""
        clean = self.levels[x]
        noisy = clean + self.sigma * torch.randn(clean.shape, generator=generator).to(clean)
        target = x.flatten(1)
        return (F.cross_entropy(self._noisy_logits(noisy).transpose(1, 2), target)
                + F.cross_entropy(self.nets["reverse"](clean, noisy).transpose(1, 2), target))

    @classmethod
    def load(cls, dataset: Dataset, device: torch.device, *, family: str,
             checkpoint: Path | None, **params: Any) -> SmoothedPixelCNN:
        state = load_for(checkpoint, dataset, device)
        config = state["config"]
        nets = _networks(config)
        nets.load_state_dict(state["state_dict"])
        return cls(nets.to(device).eval(), config, **params)

    @classmethod
    def train(cls, dataset: Dataset, out: Path, seed: int = 0, *, family: str,
              **options: Any) -> Path:
        opts = training_options(options, TRAIN_DEFAULTS)
        config = {"num_levels": dataset.num_levels, "shape": list(dataset.shape),
                  "sigma": opts["sigma"], **{key: opts[key] for key in ARCH_DEFAULTS}}
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        device = torch.device(opts["device"] or "cpu")
        pair = cls(_networks(config).to(device), config)
        train, val = split_train_val(dataset.load("train"), opts["val_fraction"], generator)

        def val_nats(x: torch.Tensor, samples: int) -> float:
            fixed = torch.Generator(device).manual_seed(0)
            return -pair.elbo(x.to(device), samples, fixed).mean().item()

        best, step, result = fit(pair.nets, lambda batch: pair.training_loss(batch, generator),
                                 lambda: val_nats(val, opts["val_elbo_samples"]), train, opts,
                                 generator, out, seed)
        bits = 1 / (dataset.dims * math.log(2))
        test_bpd = val_nats(dataset.load("test"), TEST_ELBO_SAMPLES) * bits
        metadata = {
            "command": rebuild_command(family, dataset.name, seed, options),
            "seed": seed, "options": opts, "best_step": step,
            "val_negative_elbo_bpd": round(best * bits, 4),
            "test_negative_elbo_bpd": round(test_bpd, 4),
            "num_parameters": sum(p.numel() for p in pair.nets.parameters()),
            "train_seconds": result.seconds, "training": result.cost,
            "torch_version": torch.__version__,
        }
        print(f"test -ELBO {test_bpd:.4f} bits/dim", flush=True)
        return save_checkpoint(Path(out), config, pair.nets.state_dict(), metadata)


def _networks(config: dict[str, Any]) -> nn.ModuleDict:
    arch = {key: config[key] for key in ("num_levels", "shape", *ARCH_DEFAULTS)}
    reverse = {key: value for key, value in arch.items() if key != "embed"}  # no sigma input
    return nn.ModuleDict({"noisy": NoiseConditionedPixelCNNNet(**arch),
                          "reverse": ReversePixelCNNNet(**reverse)})
