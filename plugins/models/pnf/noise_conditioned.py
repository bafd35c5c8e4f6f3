"""The Gaussian-smoothed conditional shared by every noise-conditioned model (PnF).

A discrete autoregressive model predicts a categorical over levels e_1..e_K for
each position from a (noisy) history. Convolving that categorical with
N(0, sigma^2) gives a density over the real line that is differentiable in the
value itself and, through the network, in the history:

    log p_sigma(x_i | x_<i) = log sum_k softmax_k(logits_i) N(x_i; e_k, sigma^2)

The models call this with logits computed from the noisy history x_<i.

Below it: `NoiseConditionedAR`, the base class of the models PnF runs on, with
the training recipe they share, and `PerSourcePriors`, one such model per source
of a multi-source dataset (separation).

One network per dataset is conditioned on sigma, where the original fine-tunes
one model per noise level; REFERENCE.md allows this, and it lets a sampler use
any sigma schedule without a checkpoint per level. sigma = 0 gives the exact
model on a clean history, so one checkpoint serves ancestral sampling,
likelihoods and Langevin dynamics.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from arbench import (
    Dataset,
    Incompatible,
    Logits,
    Model,
    NoiseConditioned,
    TrainingLoop,
    epoch_batches,
    level_values,
    load_for,
    loop_options,
    partial_path,
    rebuild_command,
    recorded_sha256,
    require,
    save_checkpoint,
    split_train_val,
    training_options,
)


def smoothed_log_prob_from_logits(
    logits: torch.Tensor, x: torch.Tensor, levels: torch.Tensor, sigma: float
) -> torch.Tensor:
    """Sum over positions of the smoothed conditional, per example.

    logits: ``(B, D, K)`` from the network given the noisy history;
    x: ``(B, D)`` (or any ``(B, ...)`` with D values) continuous values; levels: ``(K,)``.
    Returns ``(B,)`` in nats.
    """
    if sigma <= 0:
        raise ValueError(f"the smoothed likelihood needs sigma > 0, got {sigma}")
    values = x.reshape(x.shape[0], -1, 1)
    log_gauss = (-0.5 * ((values - levels) / sigma) ** 2
                 - math.log(sigma) - 0.5 * math.log(2 * math.pi))
    per_position = torch.logsumexp(torch.log_softmax(logits, dim=-1) + log_gauss, dim=-1)
    return per_position.sum(dim=1)


def discrete_levels(dataset: Dataset) -> int:
    """The dataset's number of levels; a noise-conditioned model predicts one of them."""
    if dataset.num_levels is None:
        raise ValueError(f"dataset '{dataset.name}' is continuous; a noise-conditioned AR "
                         "model predicts discrete levels")
    return dataset.num_levels


def quantize(x: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """The index of the nearest level for each continuous value (long, same shape)."""
    midpoints = (levels[1:] + levels[:-1]) / 2
    return torch.bucketize(x.contiguous(), midpoints.to(x.dtype))


class SigmaEmbedding(nn.Module):
    """sigma ``(B,)`` -> ``(B, dim)``: an MLP of log(sigma + 1e-3).

    The offset keeps sigma = 0 (the exact model on a clean history) finite and
    distinct from the smallest trained sigma; the affine map puts sigma in
    [0, 1] near [-1, 1] so the MLP starts in a sensible range.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(1, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, sigma: torch.Tensor) -> torch.Tensor:
        feature = torch.log(sigma + 1e-3).unsqueeze(1) / 3.5 + 1
        result: torch.Tensor = self.mlp(feature)
        return result


def noisy_bits_per_value(net: nn.Module, x: torch.Tensor, levels: torch.Tensor, sigma: float,
                         noise: torch.Tensor, batch_size: int = 64) -> float:
    """Mean NLL in bits of the clean levels `x` given their history noised by ``sigma * noise``.

    sigma = 0 is the exact test NLL; sigma > 0 measures how well the network
    sees through the noise, which is what the smoothed conditional relies on.
    Leaves `net` in eval mode.
    """
    net.eval()
    total, device = 0.0, next(net.parameters()).device
    levels = levels.to(device)
    with torch.no_grad():
        for chunk, eps in zip(x.split(batch_size), noise.split(batch_size), strict=True):
            chunk, eps = chunk.to(device), eps.to(device)
            sigmas = torch.full((len(chunk),), float(sigma), device=device)
            logits = net(levels[chunk] + sigma * eps, sigmas)
            total += F.cross_entropy(logits.transpose(1, 2), chunk.flatten(1),
                                     reduction="sum").item()
    return total / (x.numel() * math.log(2))


def _training_sigmas(n: int, opts: dict[str, Any], generator: torch.Generator) -> torch.Tensor:
    """Log-uniform in [sigma_min, sigma_max], or 0 (clean history) with probability p_clean."""
    low, high = math.log(opts["sigma_min"]), math.log(opts["sigma_max"])
    sigmas = torch.empty(n).uniform_(low, high, generator=generator).exp()
    return sigmas.masked_fill(torch.rand(n, generator=generator) < opts["p_clean"], 0.0)


class NoiseConditionedAR(Logits, Model):
    """A causal network ``net(x, sigma) -> logits (B, D, K)`` trained on noisy histories.

    ``x`` is continuous ``(B, *shape)`` in data units (level k at ``levels[k]``),
    sigma ``(B,)``; row i of the logits may depend only on x_<i and sigma.
    Subclasses set the network class, its default sizes and the training
    recipe; loading, the capabilities and training live here.
    """

    provides = frozenset({"causal-logits", "causal-conditionals", "noise-conditioned"})
    net_class: ClassVar[type[nn.Module]]
    arch_defaults: ClassVar[dict[str, Any]]  # network sizes, stored in the checkpoint config
    train_defaults: ClassVar[dict[str, Any]]  # the recipe's options (see `train`)
    presets: ClassVar[dict[str, dict[str, Any]]] = {}  # --set preset=NAME: named defaults
    multi_source: ClassVar[dict[str, tuple[str, ...]]] = {}  # dataset -> its sources

    def __init__(self, net: nn.Module, dataset: Dataset, **params: Any) -> None:
        super().__init__(**params)
        self.net = net
        self.shape = dataset.shape
        weight = next(net.parameters())
        # The datasets' convention: level k of K sits at -1 + 2k / (K - 1).
        self.levels = level_values(discrete_levels(dataset), dtype=weight.dtype,
                                   device=weight.device)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = self.net(self.levels[x], self.levels.new_zeros(x.shape[0]))
        return result

    def smoothed_log_prob(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        sigmas = torch.full((x.shape[0],), float(sigma), dtype=x.dtype, device=x.device)
        return smoothed_log_prob_from_logits(self.net(x, sigmas), x, self.levels, sigma)

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """Continuous values -> the index of the nearest level."""
        return quantize(x, self.levels)

    @classmethod
    def shipped_checkpoint(cls, dataset_name: str, *, family: str, **params: Any
                           ) -> Path | None:
        """One shipped file, or for a multi-source dataset none: `load` finds one shipped
        prior per source (`_source_path`)."""
        if dataset_name in cls.multi_source:
            return None
        return super().shipped_checkpoint(dataset_name, family=family, **params)

    @classmethod
    def _source_path(cls, source: str, checkpoint: Path | None, family: str) -> Path | None:
        """A source's prior: ``{source}.pt`` in the given folder, or the shipped one."""
        if checkpoint is None:
            return cls.shipped_checkpoint(source, family=family)
        return checkpoint / f"{source}.pt"

    @classmethod
    def load(cls, dataset: Dataset, device: torch.device, *, family: str,
             checkpoint: Path | None, **params: Any) -> Model:
        """The model of `dataset`, or a `PerSourcePriors` of one model per source."""
        if dataset.sources:
            return PerSourcePriors({
                name: cls._load_one(dataset.source(name), device,
                                    cls._source_path(name, checkpoint, family), params)
                for name in dataset.sources
            }, **params)
        return cls._load_one(dataset, device, checkpoint, params)

    @classmethod
    def _load_one(cls, dataset: Dataset, device: torch.device, path: Path | None,
                  params: dict[str, Any]) -> NoiseConditionedAR:
        state = load_for(path, dataset, device, cls.fits)
        net = cls.net_class(**state["config"])
        net.load_state_dict(state["state_dict"])
        net.to(device).eval()
        return cls(net, dataset, **params)

    @classmethod
    def fits(cls, trained: tuple[int, ...], shape: tuple[int, ...]) -> bool:
        """Whether a network trained on examples of shape `trained` runs on `shape`."""
        return trained == shape

    @classmethod
    def checkpoint_sha256(cls, path: Path | None, dataset_name: str, /, *, family: str,
                          **params: Any) -> str:
        """The checkpoint's sha256; for a multi-source dataset, a hash of its sources' ones."""
        sources = cls.multi_source.get(dataset_name)
        if not sources:
            return super().checkpoint_sha256(path, dataset_name, family=family)
        shas = [recorded_sha256(source) if (source := cls._source_path(name, path, family))
                else "" for name in sources]
        if not all(shas):
            return ""
        joined = " ".join(f"{name}:{sha}" for name, sha in zip(sources, shas, strict=True))
        return hashlib.sha256(joined.encode()).hexdigest()

    @classmethod
    def training_batch(cls, batch: torch.Tensor, opts: dict[str, Any],
                       generator: torch.Generator) -> torch.Tensor:
        """The examples one step trains on; subclasses may crop them."""
        return batch

    @classmethod
    def prior_advice(cls, dataset: str, test_bits: float) -> str | None:
        """What a prior of `test_bits` (test bits/value at sigma 0) is good for under PnF,
        printed after training; None when nothing is known."""
        return None

    @classmethod
    def train(cls, dataset: Dataset, out: Path, seed: int = 0, *, family: str,
              **options: Any) -> Path:
        """Fit on noisy histories (input x + sigma * eps, target the clean level).

        sigma is log-uniform in [sigma_min, sigma_max] per example, or 0 with
        probability p_clean so the exact model stays good. Adam with a cosine
        decay; early stopping on a validation slice of the train split, scored by
        the mean of the bits/value at sigma = 0 and at each of `val_sigmas`.
        Deterministic given the seed unless `max_seconds` cuts it short.
        """
        if dataset.sources:
            commands = "; ".join(f"arbench train {family} --dataset {name}"
                                 for name in dataset.sources)
            raise ValueError(f"'{dataset.name}' has one prior per source; train each: {commands}")
        opts = training_options(options, {**cls.arch_defaults, **cls.train_defaults},
                                cls.presets or None)
        config = {"num_levels": dataset.num_levels, "shape": list(dataset.shape),
                  **{key: opts[key] for key in cls.arch_defaults}}
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        device = torch.device(opts["device"] or "cpu")
        net = cls.net_class(**config).to(device)
        levels = level_values(discrete_levels(dataset), device=device)

        # Early stopping uses a slice of the train split; the test split is only reported.
        train, val = split_train_val(dataset.load("train"), opts["val_fraction"], generator,
                                     max_val=opts["val_max"])
        test = dataset.load("test")
        val_noise = torch.randn(val.shape, generator=generator)
        test_noise = torch.randn(test.shape, generator=generator)
        score_sigmas = [0.0, *opts["val_sigmas"]]

        def batches(_: int) -> Iterator[tuple[torch.Tensor, ...]]:
            """Each minibatch (cropped by `training_batch`) with its noise levels and
            noise, drawn with it."""
            for batch in epoch_batches(train, opts["batch_size"], generator):
                batch = cls.training_batch(batch, opts, generator)
                yield (batch, _training_sigmas(len(batch), opts, generator),
                       torch.randn(batch.shape, generator=generator))

        def loss(batch: tuple[torch.Tensor, ...], _: int) -> torch.Tensor:
            clean, sigmas, noise = batch
            noisy = levels[clean] + sigmas.view(-1, *[1] * (clean.dim() - 1)) * noise
            return F.cross_entropy(net(noisy, sigmas).transpose(1, 2), clean.flatten(1))

        def evaluate(_: int) -> tuple[float, dict[str, Any]]:
            bits = {f"sigma {s:g}": noisy_bits_per_value(net, val, levels, s, val_noise)
                    for s in score_sigmas}
            return sum(bits.values()) / len(bits), bits

        optimizer = torch.optim.Adam(net.parameters(), lr=opts["lr"])
        steps = opts["epochs"] * math.ceil(len(train) / opts["batch_size"])
        result = TrainingLoop(
            net, optimizer, loss=loss, evaluate=evaluate, periods=opts["epochs"],
            batches=batches,
            schedule=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps,
                                                                eta_min=0.05 * opts["lr"]),
            patience=opts["patience"], max_seconds=opts["max_seconds"], generator=generator,
            resume=partial_path(out), fingerprint={"seed": seed, **opts}, splittable=True,
            **loop_options(opts)).run()

        test_bits = {f"{s:g}": round(noisy_bits_per_value(net, test, levels, s, test_noise), 4)
                     for s in score_sigmas}
        metadata = {
            "command": rebuild_command(family, dataset.name, seed, options),
            "seed": seed, "options": opts,
            "best_epoch": result.period, "epochs_run": result.periods_run,
            "stopped_by": result.stopped_by, "val_score": round(result.score, 4),
            "val_bits_at_sigma": {key.removeprefix("sigma "): round(b, 4)
                                  for key, b in result.details.items()},
            "test_bpd": test_bits["0"],
            "test_bits_at_sigma": test_bits,
            "num_parameters": sum(p.numel() for p in net.parameters()),
            "train_seconds": result.seconds, "training": result.cost,
            "torch_version": torch.__version__,
        }
        print(f"best epoch {result.period}: val score {metadata['val_score']}, test bits/value "
              f"at sigma {test_bits}", flush=True)
        advice = cls.prior_advice(dataset.name, test_bits["0"])
        if advice:
            print(advice, flush=True)
        return save_checkpoint(Path(out), config, net.state_dict(), metadata)


class PerSourcePriors(Model):
    """One `NoiseConditionedAR` per source of a multi-source dataset, for separation.

    PnF separation runs Langevin dynamics on each source under its own prior
    plus the mixture constraint, so samplers take ``prior(source)``. The joint
    calls are refused: a sampler that used them would be treating the stacked
    sources as one sequence.
    """

    provides = NoiseConditionedAR.provides

    def __init__(self, priors: Mapping[str, Model], **params: Any) -> None:
        super().__init__(**params)
        for prior in priors.values():
            require(prior, NoiseConditioned, "a source prior")
        self.priors = dict(priors)
        self.sources = tuple(priors)

    def prior(self, source: str) -> Model:
        """The model of source `source`."""
        if source not in self.priors:
            raise KeyError(f"no prior for source '{source}'; sources: {', '.join(self.sources)}")
        return self.priors[source]

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """Continuous values -> the index of the nearest level (shared by the sources)."""
        return require(self.priors[self.sources[0]], NoiseConditioned, "pnf").quantize(x)

    def _refuse(self, what: str) -> Incompatible:
        return Incompatible(f"{what} is per source for a multi-source dataset: call "
                            f"prior(source).{what}(...) with source in {self.sources}")

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        raise self._refuse("logits")

    def smoothed_log_prob(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        raise self._refuse("smoothed_log_prob")

    @classmethod
    def load(cls, dataset: Dataset, device: torch.device, *, family: str,
             checkpoint: Path | None, **params: Any) -> Model:
        raise TypeError("PerSourcePriors are built by a noise-conditioned model's load(), "
                        "e.g. WaveNet.load(PianoVoice(), device)")

    @classmethod
    def train(cls, dataset: Dataset, out: Path, seed: int = 0, *, family: str,
              **options: Any) -> Path:
        raise TypeError("train one noise-conditioned model per source instead")
