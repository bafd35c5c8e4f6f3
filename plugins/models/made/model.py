"""2-D density models of distribution smoothing: the MADE baseline, the smoothed pair,
and the true density.

- `made-mol`: a MADE with `mixtures` logistics per dimension fitted to the clean
  points by maximum likelihood, the paper's baseline (3 and 6 mixtures, swept by
  default).
- `smoothed-made-mol`: p(x~) on x~ = x + sigma * eps and p(x | x~) in one MADE
  over the stacked ``[x~, x]``, as the original code does: its first two
  conditionals are p(x~), its last two p(x | x~). Maximum likelihood on the
  stacked pairs trains both; the reported NLL is -ELBO, an upper bound. With 3
  mixtures it has about as many parameters as the 6-mixture baseline (the
  paper's "comparable number of parameters").
- `true-density`: the dataset's closed-form density, the floor any model's NLL
  sits above; scored like an exact model, never trained.

The number of mixtures picks the checkpoint (``made-mol-rings.pt`` for 3,
``made-mol6-rings.pt`` for 6), so `arbench train made-mol --dataset rings --set
mixtures=6` rebuilds the second. sigma = 0.2 is chosen on the validation
points (never on test), -ELBO in nats over 5,000 validation points, paired
Wilcoxon test over the points. Short trials (4,000 training steps) ranked
0.05 / 0.1 / 0.2 / 0.3 at -1.145 / -1.127 / -1.221 / -1.235 on rings and
1.993 / 1.905 / 1.708 / 1.697 on olympics, leaving 0.2 and 0.3; trained to full
length (20,000 steps), 0.3 is worse than 0.2 on both: rings -1.299 vs -1.307
(+0.007 [+0.005, +0.010], p 2e-4), olympics 1.197 vs 0.921 (+0.276, p 4e-90).
Reproduce a point of it with ``arbench train smoothed-made-mol --dataset rings
--set sigma=0.3 --out s.pt`` and ``arbench run --task density --dataset rings
--model smoothed-made-mol --no-baselines --set smoothed-made-mol.checkpoint=s.pt
--set density.split=validation``.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch

from arbench import (
    CheckpointError,
    Dataset,
    Incompatible,
    InOrder,
    Model,
    Param,
    load_for,
    rebuild_command,
    save_checkpoint,
    shipped_dir,
    split_train_val,
    training_options,
)
from arbench_plugins.models.distribution_smoothing.fitting import FIT_DEFAULTS, fit
from arbench_plugins.models.distribution_smoothing.pair import SmoothedPair
from arbench_plugins.models.made.net import MADE

DEFAULT_MIXTURES = 3
TRAIN_DEFAULTS: dict[str, Any] = {
    **FIT_DEFAULTS, "mixtures": DEFAULT_MIXTURES, "hidden": 128, "layers": 2,
    "val_fraction": 0.1,
}
PAIR_DEFAULTS: dict[str, Any] = {**TRAIN_DEFAULTS, "sigma": 0.2, "val_elbo_samples": 4}
TEST_ELBO_SAMPLES = 16


class _PointsMADE(Model):
    """A MADE over points: checkpoint naming by mixtures, loading and the training recipe.
    Subclasses say what the network models (`stacked`) and how it is scored."""

    stacked: ClassVar[bool]  # the network models [x~, x] (2D values) instead of x
    train_defaults: ClassVar[dict[str, Any]]

    class Params(Model.Params):
        mixtures: int = Param(DEFAULT_MIXTURES, "logistic mixture components per conditional "
                              "(picks the shipped checkpoint)", ge=1)

    params: Params

    def __init__(self, net: MADE, config: dict[str, Any], **params: Any) -> None:
        super().__init__(**params)
        self.net = net

    @abstractmethod
    def training_loss(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The loss of one minibatch of training points."""

    @abstractmethod
    def validation_nats(self, x: torch.Tensor, opts: dict[str, Any], samples: int = 0) -> float:
        """The mean NLL (or -ELBO) in nats of held-out points `x`: lower is better."""

    @classmethod
    def shipped_checkpoint(cls, dataset_name: str, *, family: str, **params: Any
                           ) -> Path | None:
        """``made-mol-rings.pt`` for the default mixtures, ``made-mol6-rings.pt`` for 6
        (`params` may be training options too: they pick the file `arbench train` writes)."""
        mixtures = params.get("mixtures", DEFAULT_MIXTURES)
        suffix = "" if mixtures == DEFAULT_MIXTURES else mixtures
        return shipped_dir(cls) / f"{family}{suffix}-{dataset_name}.pt"

    @classmethod
    def load(cls, dataset: Dataset, device: torch.device, *, family: str,
             checkpoint: Path | None, **params: Any) -> Model:
        model = cls.Params(**params)
        state = load_for(checkpoint, dataset, device)
        config = state["config"]
        if "mixtures" in model.model_fields_set and config["net"]["mixtures"] != model.mixtures:
            raise CheckpointError(f"checkpoint {checkpoint} has {config['net']['mixtures']} "
                                  f"mixtures, not the {model.mixtures} asked for")
        net = MADE(**config["net"])
        net.load_state_dict(state["state_dict"])
        return cls(net.to(device).eval(), config, **params)

    @classmethod
    def train(cls, dataset: Dataset, out: Path, seed: int = 0, *, family: str,
              **options: Any) -> Path:
        opts = training_options(options, cls.train_defaults)
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        arch = {"dims": dataset.dims * (1 + cls.stacked), "mixtures": opts["mixtures"],
                "hidden": opts["hidden"], "layers": opts["layers"]}
        config = {"shape": list(dataset.shape), "net": arch,
                  **({"sigma": opts["sigma"]} if cls.stacked else {})}
        device = torch.device(opts["device"] or "cpu")
        model = cls(MADE(**arch).to(device), config, mixtures=opts["mixtures"])
        train, val = split_train_val(dataset.load("train"), opts["val_fraction"], generator)
        val = val.to(device)
        best, step, result = fit(model.net, lambda batch: model.training_loss(batch, generator),
                                 lambda: model.validation_nats(val, opts), train, opts,
                                 generator, out, seed)
        with torch.no_grad():
            test_nats = model.validation_nats(dataset.load("test").to(device), opts,
                                              TEST_ELBO_SAMPLES)
        metadata = {
            "command": rebuild_command(family, dataset.name, seed, options),
            "seed": seed, "options": opts, "best_step": step,
            "nll": "-ELBO, an upper bound" if cls.stacked else "exact",
            "val_nll_nats": round(best, 4), "test_nll_nats": round(test_nats, 4),
            "num_parameters": sum(p.numel() for p in model.net.parameters()),
            "train_seconds": result.seconds, "training": result.cost,
            "torch_version": torch.__version__,
        }
        print(f"test NLL {test_nats:.4f} nats", flush=True)
        return save_checkpoint(Path(out), config, model.net.state_dict(), metadata)


class MADEMoL(InOrder, _PointsMADE):
    """The baseline: an exact autoregressive density over the clean points."""

    stacked: ClassVar[bool] = False
    train_defaults: ClassVar[dict[str, Any]] = TRAIN_DEFAULTS
    provides = frozenset({"causal-conditionals"})

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.log_prob(x)

    def sample_value(self, x: torch.Tensor, i: int, generator: torch.Generator) -> torch.Tensor:
        return self.net.sample_dimension(x, i, generator)

    def training_loss(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return -self.net.log_prob(batch).mean()

    def validation_nats(self, x: torch.Tensor, opts: dict[str, Any], samples: int = 0) -> float:
        return -self.net.log_prob(x).mean().item()


class SmoothedMADEMoL(_PointsMADE, SmoothedPair):
    """p(x~) and p(x | x~) at one sigma: one MADE over ``[x~, x]``."""

    stacked: ClassVar[bool] = True
    train_defaults: ClassVar[dict[str, Any]] = PAIR_DEFAULTS
    provides = SmoothedPair.provides

    def __init__(self, net: MADE, config: dict[str, Any], **params: Any) -> None:
        super().__init__(net, config, **params)
        self.sigma = config["sigma"]

    @property
    def dims(self) -> int:
        """Values per clean example: what one draw of `sample_clean` costs in calls."""
        return self.net.dims // 2

    def continuous(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def _stack(self, noisy: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        return torch.cat([noisy, torch.zeros_like(noisy) if x is None else x], dim=1)

    def noisy_log_prob(self, noisy: torch.Tensor) -> torch.Tensor:
        return self.net.log_prob_per_dim(self._stack(noisy))[:, :self.dims].sum(dim=1)

    def sample_noisy(self, n: int, generator: torch.Generator) -> torch.Tensor:
        blank = torch.zeros(n, self.net.dims, device=self.net.head.weight.device)
        return self.net.complete(blank, generator, stop=self.dims)[:, :self.dims]

    def clean_log_prob(self, x: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
        return self.net.log_prob_per_dim(self._stack(noisy, x))[:, self.dims:].sum(dim=1)

    def sample_clean(self, noisy: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.net.complete(self._stack(noisy), generator, start=self.dims)[:, self.dims:]

    def training_loss(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noisy = batch + self.sigma * torch.randn(batch.shape, generator=generator).to(batch)
        return -self.net.log_prob(self._stack(noisy, batch)).mean()

    def validation_nats(self, x: torch.Tensor, opts: dict[str, Any], samples: int = 0) -> float:
        """-ELBO with fixed noise, so successive validations are comparable."""
        draws = samples or opts["val_elbo_samples"]
        return -self.elbo(x, draws, torch.Generator(x.device).manual_seed(0)).mean().item()


@runtime_checkable
class ClosedForm(Protocol):
    """A dataset that knows its own density (the 2-D points)."""

    def log_prob(self, x: torch.Tensor) -> torch.Tensor: ...


class TrueDensity(InOrder, Model):
    """The dataset's own closed-form density (``dataset.log_prob``): the NLL floor."""

    provides = frozenset({"causal-conditionals"})

    def __init__(self, dataset: ClosedForm, **params: Any) -> None:
        super().__init__(**params)
        self.dataset = dataset

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.dataset.log_prob(x)

    def sample_value(self, x: torch.Tensor, i: int, generator: torch.Generator) -> torch.Tensor:
        raise Incompatible("the true density is scored, not sampled value by value")

    @classmethod
    def shipped_checkpoint(cls, dataset_name: str, *, family: str, **params: Any
                           ) -> Path | None:
        """None: a closed form has nothing to load."""
        return None

    @classmethod
    def load(cls, dataset: Dataset, device: torch.device, *, family: str,
             checkpoint: Path | None, **params: Any) -> TrueDensity:
        if not isinstance(dataset, ClosedForm):
            raise Incompatible(f"dataset '{dataset.name}' has no closed-form density")
        return cls(dataset, **params)

    @classmethod
    def train(cls, dataset: Dataset, out: Path, seed: int = 0, *, family: str,
              **options: Any) -> Path:
        raise ValueError("the true density is the dataset's own formula: nothing to train")
