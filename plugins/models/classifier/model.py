"""A small CNN classifier of 8x8 digits: the feature extractor of digits FID and IS.

Inception-V3 features mean little on 8x8 grey images, so sample quality on
digits is measured in the feature space of this classifier, as is usual for
MNIST-scale data: FID uses the `features` of the penultimate layer (64 units,
taken before its ReLU so that no unit is dead and the covariance stays full
rank) and the Inception Score the class `logits`.

Inputs are continuous values in data units, ``(B, 1, 8, 8)`` in [-1, 1]
(`arbench.plugin.contracts.level_values`); integer levels are converted first. The
network is rebuilt from the ``config`` stored in the checkpoint. It provides
no sampling capability, so grids never pick it as a sampler's model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from arbench import (
    Dataset,
    Model,
    TrainingLoop,
    epoch_batches,
    holdout,
    level_values,
    load_for,
    loop_options,
    partial_path,
    rebuild_command,
    recorded_sha256,
    save_checkpoint,
    training_options,
)

SHIPPED_DATASET = "digits"  # the shipped checkpoint serves every dataset of its shape

TRAIN_DEFAULTS: dict[str, Any] = {
    "channels": 32,
    "features": 64,
    "dropout": 0.3,
    "epochs": 60,
    "patience": 10,
    "lr": 2e-3,
    "weight_decay": 1e-4,
    "batch_size": 64,
    "val_fraction": 0.1,
}


class DigitsClassifierNet(nn.Module):
    """``(B, 1, H, W)`` continuous -> features ``(B, F)`` -> logits ``(B, classes)``."""

    def __init__(self, shape: list[int], num_classes: int, channels: int, features: int,
                 dropout: float) -> None:
        super().__init__()
        c, h, w = shape
        self.body = nn.Sequential(
            nn.Conv2d(c, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * channels, 2 * channels, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(2 * channels * (h // 4) * (w // 4), features),
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(features, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = self.body(x)
        return result

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = self.head(self.body(x))
        return result


def _accuracy(net: DigitsClassifierNet, x: torch.Tensor, y: torch.Tensor,
              batch_size: int = 1024) -> float:
    """Fraction of `x` classified as `y`; leaves `net` in eval mode."""
    net.eval()
    device = next(net.parameters()).device
    with torch.no_grad():
        predicted = torch.cat([net(chunk.to(device)).argmax(dim=1).cpu()
                               for chunk in x.split(batch_size)])
    return float((predicted == y).float().mean())


class DigitsClassifier(Model):
    """The trained digits classifier; ``checkpoint=None`` loads the shipped one.

    Besides being a model plugin (so ``arbench train digits-classifier`` rebuilds
    it) it is the "digits-classifier" feature extractor of the quality metrics:
    `name`, `sha256`, `num_features`, `features` and `logits` below.
    """

    provides = frozenset({"image-features"})
    name = "digits-classifier"

    def __init__(self, net: DigitsClassifierNet, config: dict[str, Any], sha256: str,
                 **params: Any) -> None:
        super().__init__(**params)
        self.net = net
        self.config = config
        self.sha256 = sha256  # identifies the weights: part of the FID reference cache key
        self.num_features = int(config["features"])
        self.num_levels = config.get("num_levels")

    @classmethod
    def shipped_checkpoint(cls, dataset_name: str, *, family: str, **params: Any
                           ) -> Path | None:
        """One classifier, trained on digits, serves every digits variant."""
        return super().shipped_checkpoint(SHIPPED_DATASET, family=family)

    @classmethod
    def load(cls, dataset: Dataset, device: torch.device, *, family: str,
             checkpoint: Path | None, **params: Any) -> DigitsClassifier:
        state = load_for(checkpoint, dataset, device, levels=False)  # reads values in data units
        config = state["config"]
        net = DigitsClassifierNet(**{k: config[k] for k in
                                     ("shape", "num_classes", "channels", "features", "dropout")})
        net.load_state_dict(state["state_dict"])
        net.to(device).eval()
        assert checkpoint is not None  # load_for refuses None
        return cls(net, config, recorded_sha256(checkpoint), **params)

    def _values(self, x: torch.Tensor) -> torch.Tensor:
        """Integer levels to data units; continuous values pass through as float32."""
        if x.dtype.is_floating_point:
            return x.float()
        if self.num_levels is None:
            raise ValueError("this classifier checkpoint records no level count; give it "
                             "continuous values in [-1, 1]")
        return level_values(self.num_levels, device=x.device)[x]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features ``(B, F)`` of images ``(B, 1, 8, 8)``."""
        return self.net.features(self._values(x))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, 10)`` (not the causal conditionals of `Model.logits`)."""
        result: torch.Tensor = self.net(self._values(x))
        return result

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("a classifier has no likelihood of images")

    @classmethod
    def train(cls, dataset: Dataset, out: Path, seed: int = 0, *, family: str,
              **options: Any) -> Path:
        opts = training_options(options, TRAIN_DEFAULTS)
        if not hasattr(dataset, "labels"):
            raise ValueError(f"dataset '{dataset.name}' has no class labels to train on")
        labels = dataset.labels("train")
        config = {
            "shape": list(dataset.shape), "num_levels": dataset.num_levels,
            "num_classes": int(labels.max()) + 1, "channels": opts["channels"],
            "features": opts["features"], "dropout": opts["dropout"],
        }
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        device = torch.device(opts["device"] or "cpu")
        net = DigitsClassifierNet(**{k: v for k, v in config.items() if k != "num_levels"})
        net.to(device)

        # Early stopping uses a slice of the train split; the test split is only reported.
        data = dataset.continuous(dataset.load("train"))
        train_idx, val_idx = holdout(len(data), opts["val_fraction"], generator)
        train, train_y = data[train_idx], labels[train_idx]
        val, val_y = data[val_idx], labels[val_idx]

        def evaluate(_: int) -> tuple[float, dict[str, Any]]:
            # the loss is smoother than the accuracy of ~150 images, so it selects
            accuracy = _accuracy(net, val, val_y)
            loss = F.cross_entropy(net(val.to(device)), val_y.to(device)).item()
            return loss, {"accuracy": accuracy}

        optimizer = torch.optim.AdamW(net.parameters(), lr=opts["lr"],
                                      weight_decay=opts["weight_decay"])
        result = TrainingLoop(
            net, optimizer, loss=lambda batch, _: F.cross_entropy(net(batch[0]), batch[1]),
            evaluate=evaluate, periods=opts["epochs"],
            batches=lambda _: epoch_batches(train, opts["batch_size"], generator, train_y),
            patience=opts["patience"], generator=generator, resume=partial_path(out),
            fingerprint={"seed": seed, **opts}, splittable=True, **loop_options(opts)).run()
        test = dataset.continuous(dataset.load("test"))
        metadata = {
            "command": rebuild_command(family, dataset.name, seed, options),
            "seed": seed,
            "options": opts,
            "best_epoch": result.period,
            "val_loss": round(result.score, 4),
            "val_accuracy": round(_accuracy(net, val, val_y), 4),
            "test_accuracy": round(_accuracy(net, test, dataset.labels("test")), 4),
            "num_parameters": sum(p.numel() for p in net.parameters()),
            "train_seconds": result.seconds, "training": result.cost,
            "torch_version": torch.__version__,
        }
        print(f"best epoch {result.period}: val accuracy {metadata['val_accuracy']}, "
              f"test accuracy {metadata['test_accuracy']}", flush=True)
        return save_checkpoint(Path(out), config, net.state_dict(), metadata)
