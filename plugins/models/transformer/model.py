"""`transformer`: a causal transformer over any discrete raster dataset, trained by the one
training loop.

Values are read in raster order (text's characters, digits' pixels, mu-law samples, a
VQ-VAE's codes), so it serves everything PixelCNN serves through causal logits
(ancestral with a key/value cache, Jacobi, speculative sampling, the density task)
and is a draft or a target for speculative sampling. Presets: ``tiny`` (tests),
``small`` (CPU; the shipped text and digits checkpoints), ``medium`` (4.8M parameters,
`transformer-medium`: the shipped text target of the latency suite, stored in half
precision) and ``large`` (a GPU).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from arbench import (
    Dataset,
    Incompatible,
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
from arbench_plugins.models.transformer.net import CausalTransformer, KVCache

ARCH_KEYS = ("width", "layers", "heads", "dropout")
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"width": 16, "layers": 1, "heads": 2, "dropout": 0.0, "epochs": 2},
    "small": {"width": 64, "layers": 3, "heads": 4, "dropout": 0.1},
    "large": {"width": 512, "layers": 12, "heads": 8, "dropout": 0.1, "batch_size": 256},
    # 4.8M parameters: a target whose step is compute, not dispatch (speculative latency);
    # stored in half precision to ship within 10 MB
    "medium": {"width": 256, "layers": 6, "heads": 8, "dropout": 0.1, "lr": 1e-3,
               "epochs": 30, "patience": 4, "half": True},
}
TRAIN_DEFAULTS: dict[str, Any] = {
    "preset": "small", **PRESETS["small"], "epochs": 100, "patience": 8, "lr": 2e-3,
    "batch_size": 64, "val_fraction": 0.1, "clip_grad": 1.0, "half": False,
}


class Transformer(Logits, Model):
    """The trained causal transformer of a dataset; ``checkpoint=None`` loads the shipped one."""

    provides = frozenset({"causal-logits", "causal-conditionals"})
    preset = "small"  # what `arbench train` builds unless --set preset= says otherwise

    def __init__(self, net: CausalTransformer, dataset: Dataset, **params: Any) -> None:
        super().__init__(**params)
        self.net, self.shape = net, tuple(dataset.shape)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = self.net(x.reshape(len(x), -1))
        return result

    def incremental(self, n: int) -> KVCache:
        return KVCache(self.net, n)

    @classmethod
    def load(cls, dataset: Dataset, device: torch.device, *, family: str,
             checkpoint: Path | None, **params: Any) -> Transformer:
        state = load_for(checkpoint, dataset, device)
        net = CausalTransformer(**_network(state["config"]))
        net.load_state_dict(state["state_dict"])
        return cls(net.to(device).eval(), dataset, **params)

    @classmethod
    def train(cls, dataset: Dataset, out: Path, seed: int = 0, *, family: str,
              **options: Any) -> Path:
        """Cross-entropy of every value given those before it; early stopping on a
        validation slice of train, scored in bits per value."""
        if dataset.num_levels is None:
            raise Incompatible("a transformer over levels needs discrete data")
        defaults = {**TRAIN_DEFAULTS, **PRESETS[cls.preset], "preset": cls.preset}
        opts = training_options(options, defaults, PRESETS)
        config = {"num_levels": dataset.num_levels, "shape": list(dataset.shape),
                  **{key: opts[key] for key in ARCH_KEYS}}
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        device = torch.device(opts["device"] or "cpu")
        net = CausalTransformer(**_network(config)).to(device)
        flat = dataset.load("train").reshape(-1, dataset.dims)
        train, val = split_train_val(flat, opts["val_fraction"], generator)

        def loss(batch: torch.Tensor, _: int) -> torch.Tensor:
            return F.cross_entropy(net(batch).transpose(1, 2), batch)

        optimizer = torch.optim.AdamW(net.parameters(), lr=opts["lr"], weight_decay=0.01)
        result = TrainingLoop(
            net, optimizer, loss=loss, evaluate=lambda _: bits_per_value(net, val),
            periods=opts["epochs"],
            batches=lambda _: epoch_batches(train, opts["batch_size"], generator),
            patience=opts["patience"], generator=generator, resume=partial_path(out),
            fingerprint={"seed": seed, **opts}, splittable=True, **loop_options(opts)).run()
        weights = {key: value.half() if opts["half"] and value.is_floating_point() else value
                   for key, value in net.state_dict().items()}  # loaded back into float32
        net.load_state_dict(weights)  # the test score is the stored weights'
        test_bits = bits_per_value(net, dataset.load("test").reshape(-1, dataset.dims))
        metadata = {
            "command": rebuild_command(family, dataset.name, seed, options),
            "seed": seed, "options": opts, "best_epoch": result.period,
            "val_bits_per_value": round(result.score, 4),
            "test_bits_per_value": round(test_bits, 4),
            "num_parameters": sum(p.numel() for p in net.parameters()),
            "train_seconds": result.seconds, "training": result.cost,
            "torch_version": torch.__version__,
        }
        print(f"best epoch {result.period}: test {test_bits:.4f} bits per value", flush=True)
        return save_checkpoint(Path(out), config, weights, metadata)


class MediumTransformer(Transformer):
    """The same network at the ``medium`` preset (`transformer-medium`): a target in the
    regime where a step is compute, with the shipped small transformer as its draft."""

    preset = "medium"


def _network(config: dict[str, Any]) -> dict[str, Any]:
    """The network's arguments among a checkpoint's config."""
    return {"num_levels": config["num_levels"], "length": math.prod(config["shape"]),
            **{key: config[key] for key in ARCH_KEYS}}


@torch.no_grad()
def bits_per_value(net: CausalTransformer, x: torch.Tensor, batch_size: int = 256) -> float:
    """Mean NLL of `x` ``(N, D)`` in bits per value; leaves `net` in eval mode."""
    net.eval()
    device, total = net.position.device, 0.0
    for chunk in x.split(batch_size):
        chunk = chunk.to(device)
        total += F.cross_entropy(net(chunk).transpose(1, 2), chunk, reduction="sum").item()
    return total / (x.numel() * math.log(2))
