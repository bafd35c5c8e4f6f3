"""Order-agnostic autoregressive diffusion models (ARDMs), plain and upscale.

One transformer sees every position at once: known positions show their value,
unknown ones an absorbing token (or, in later upscale stages, their coarser
value), plus a known/unknown flag. It predicts every unknown position in one
call, so a sampler may generate any subset in parallel.

Training (Hoogeboom et al., 2022): a random order sigma and a step t ~ U{1..D};
the t-1 first positions of sigma are known and the loss of the D-t+1 others is
summed, weighted D / (D - t + 1): an unbiased estimate of the order-agnostic
NLL. The per-step loss components L_t (expected per-position loss with t-1
positions known), estimated on held-out data, are stored with the checkpoint:
samplers split a step budget with them by dynamic programming.

Upscaling: with branch factor b, S = ceil(log_b K) stages; stage s generates
the s-th most significant base-b digit of every value, conditioned on the
coarser value x^(s-1) = floor(x / b^(S-s+1)) * b^(S-s+1). The plain ARDM is the
one-stage case with b = K. The network predicts K logits; a stage's digit
distribution sums the probabilities of the values in each digit's bucket,
among the values consistent with the coarser value.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from arbench import (
    Dataset,
    Model,
    TrainingLoop,
    load_for,
    loop_options,
    partial_path,
    random_batches,
    rebuild_command,
    save_checkpoint,
    split_train_val,
    step_periods,
    training_options,
)
from arbench_plugins.models.ardm.unet import ImageARDMNet

TRAIN_DEFAULTS: dict[str, Any] = {
    "clip_grad": 1.0,
    "backbone": "transformer",  # or "unet" (images): see .unet
    "width": 64,
    "layers": 3,
    "heads": 4,
    "component_steps": None,  # None: L_t at every step; else at this many, interpolated
    "steps": 4000,
    "lr": 1e-3,
    "batch_size": 64,
    "val_fraction": 0.1,
    "eval_every": 250,
    "component_repeats": 8,  # random orders per held-out example when estimating L_t
}


PRESETS: dict[str, dict[str, Any]] = {  # images; arbench's sizes (see .unet)
    "cifar10": {"backbone": "unet", "width": 128, "layers": 2, "steps": 500000,
                "batch_size": 64, "lr": 2e-4, "eval_every": 5000, "component_steps": 64},
    "tiny": {"backbone": "unet", "width": 16, "layers": 1, "steps": 4, "batch_size": 4,
             "eval_every": 2, "component_steps": 8, "component_repeats": 1},
}

LOG_ZERO = -1e4  # exp(LOG_ZERO) is 0 in float32


def stage_count(num_levels: int, branch: int) -> int:
    """S = ceil(log_b K), computed in integers."""
    stages, reach = 1, branch
    while reach < num_levels:
        stages, reach = stages + 1, reach * branch
    return stages


class OrderAgnosticNet(nn.Module):
    """(values, known, stage) -> logits (B, D, K) for every position: a transformer over
    positions, or (``backbone="unet"``, images of `shape`) a convolutional UNet."""

    loss_components: torch.Tensor  # a buffer, (stages, dims)

    def __init__(self, num_levels: int, dims: int, branch: int, width: int, layers: int,
                 heads: int, backbone: str = "transformer", shape: list[int] | None = None
                 ) -> None:
        super().__init__()
        self.num_levels, self.dims, self.branch = num_levels, dims, branch
        self.stages = stage_count(num_levels, branch)
        self.register_buffer("loss_components", torch.zeros(self.stages, dims))
        self.unet = None
        if backbone == "unet":
            if shape is None or len(shape) != 3:
                raise ValueError(f"the unet backbone takes images (C, H, W); shape {shape}")
            self.unet = ImageARDMNet(num_levels, self.stages, shape, width, layers)
            return
        if backbone != "transformer":
            raise ValueError(f"unknown ARDM backbone {backbone!r}; known: transformer, unet")
        self.value = nn.Embedding(num_levels + 1, width)  # index K is the absorbing state
        self.known = nn.Embedding(2, width)
        self.stage = nn.Embedding(self.stages, width)
        self.position = nn.Parameter(torch.zeros(dims, width))
        for table in (self.value.weight, self.known.weight, self.stage.weight, self.position):
            nn.init.normal_(table, std=0.02)  # one scale, so positions are as visible as values
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, num_levels))

    def forward(self, values: torch.Tensor, known: torch.Tensor, stage: int) -> torch.Tensor:
        if self.unet is not None:
            logits: torch.Tensor = self.unet(values, known, stage)
            return logits
        h = (self.value(values) + self.known(known.long()) + self.position
             + self.stage.weight[stage - 1])
        logits = self.head(self.encoder(h))
        return logits


class Digits:
    """Base-b digit arithmetic of one stage: coarsening, digits, and bucketed log-probs."""

    def __init__(self, num_levels: int, branch: int, stages: int, device: torch.device) -> None:
        self.num_levels, self.branch, self.stages = num_levels, branch, stages
        levels = torch.arange(num_levels, device=device)
        # log 1[digit of value v at stage s == j], (S, K, b); a finite "log 0" keeps the
        # gradients of empty buckets finite (exp underflows to exactly 0 all the same)
        self.log_bucket = torch.stack([
            torch.where(F.one_hot((levels // self.unit(s)) % branch, branch).bool(), 0.0,
                        LOG_ZERO)
            for s in range(1, stages + 1)])
        self.levels = levels

    def unit(self, stage: int) -> int:
        """The place value b^(S-s) of stage s's digit."""
        result: int = self.branch ** (self.stages - stage)
        return result

    def coarse(self, x: torch.Tensor, stage: int) -> torch.Tensor:
        """x^(stage): values rounded down to the first `stage` digits (x^(S) = x, x^(0) = 0)."""
        step = self.branch ** (self.stages - stage)
        result: torch.Tensor = torch.div(x, step, rounding_mode="floor") * step
        return result

    def digit(self, x: torch.Tensor, stage: int) -> torch.Tensor:
        """The digit of `x` that stage `stage` predicts."""
        return torch.div(x, self.unit(stage), rounding_mode="floor") % self.branch

    def current(self, x: torch.Tensor, known: torch.Tensor, stage: int) -> torch.Tensor:
        """What stage `stage` sees of `x`: x^(stage) where known, x^(stage-1) elsewhere."""
        return self.coarse(x, stage).where(known, self.coarse(x, stage - 1))

    def log_probs(self, logits: torch.Tensor, current: torch.Tensor, stage: int) -> torch.Tensor:
        """(B, D, b) log-probabilities of stage `stage`'s digit, given the coarser values."""
        if self.stages == 1:
            return logits.log_softmax(-1)
        parent = self.coarse(current, stage - 1)  # (B, D)
        allowed = self.coarse(self.levels, stage - 1) == parent[..., None]  # (B, D, K)
        log_p = logits.masked_fill(~allowed, LOG_ZERO).log_softmax(-1)
        return torch.logsumexp(log_p[..., None] + self.log_bucket[stage - 1], dim=-2)


class ARDM(Model):
    """A trained order-agnostic ARDM; ``checkpoint=None`` loads the shipped one."""

    provides = frozenset({"order-agnostic"})
    train_branch: ClassVar[int | None] = None  # None: one stage with b = K

    def __init__(self, net: OrderAgnosticNet, dataset: Dataset, **params: Any) -> None:
        super().__init__(**params)
        self.net = net
        self.num_levels, self.shape, self.dims = net.num_levels, dataset.shape, net.dims
        self.stages, self.branch = net.stages, net.branch
        self.digits = Digits(net.num_levels, net.branch, net.stages,
                             net.loss_components.device)

    @property
    def loss_components(self) -> torch.Tensor:
        """(S, D) expected loss in nats of one position generated with t known, per stage."""
        return self.net.loss_components

    def step_log_probs(self, current: torch.Tensor, known: torch.Tensor,
                       stage: int) -> torch.Tensor:
        """One network call: (B, D, b) log-probs of every position's stage digit.

        `current` (B, D) holds x^(stage) at known positions and x^(stage-1) elsewhere.
        """
        return step_log_probs(self.net, self.digits, current, known, stage)

    @classmethod
    def load(cls, dataset: Dataset, device: torch.device, *, family: str,
             checkpoint: Path | None, **params: Any) -> ARDM:
        state = load_for(checkpoint, dataset, device)
        config = state["config"]
        net = OrderAgnosticNet(**config)
        net.load_state_dict(state["state_dict"])
        return cls(net.to(device).eval(), dataset, **params)

    @classmethod
    def train(cls, dataset: Dataset, out: Path, seed: int = 0, *, family: str,
              **options: Any) -> Path:
        opts = training_options(options, {**TRAIN_DEFAULTS, "branch": cls.train_branch},
                                PRESETS)
        config = {"num_levels": dataset.num_levels, "dims": dataset.dims,
                  "branch": opts["branch"] or dataset.num_levels, "width": opts["width"],
                  "layers": opts["layers"], "heads": opts["heads"]}
        if opts["backbone"] != "transformer":  # older checkpoints have neither key
            config.update(backbone=opts["backbone"], shape=list(dataset.shape))
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        device = torch.device(opts["device"] or "cpu")
        net = OrderAgnosticNet(**config).to(device)
        digits = Digits(net.num_levels, net.branch, net.stages, device)

        train, val = split_train_val(dataset.load("train").flatten(1), opts["val_fraction"],
                                     generator)
        optimizer = torch.optim.AdamW(net.parameters(), lr=opts["lr"], weight_decay=0.01)
        periods = step_periods(opts["steps"], opts["eval_every"])
        result = TrainingLoop(
            net, optimizer,
            loss=lambda batch, _: elbo_nats(net, digits, batch, generator).mean() / batch.shape[1],
            evaluate=lambda _: held_out_bpd(net, digits, val, seed), periods=len(periods),
            batches=lambda period: random_batches(train, opts["batch_size"], periods[period - 1],
                                                  generator),
            schedule=torch.optim.lr_scheduler.OneCycleLR(optimizer, opts["lr"], opts["steps"],
                                                         pct_start=0.05),
            generator=generator, resume=partial_path(out),
            fingerprint={"seed": seed, **opts}, label="evaluation", **loop_options(opts)).run()
        net.loss_components.copy_(loss_components(net, digits, val, opts["component_repeats"],
                                                  seed, opts["component_steps"]))
        test = dataset.load("test").flatten(1)
        components = net.loss_components
        metadata = {
            "command": rebuild_command(family, dataset.name, seed, options),
            "seed": seed, "options": opts,
            "best_step": sum(periods[:result.period]), "val_bpd": round(result.score, 4),
            "test_bpd": round(held_out_bpd(net, digits, test, seed), 4),
            "val_bpd_from_components": round(
                components.sum().item() / (net.dims * math.log(2)), 4),
            "loss_components_nats": [[round(v, 5) for v in row] for row in components.tolist()],
            "num_parameters": sum(p.numel() for p in net.parameters()),
            "train_seconds": result.seconds, "training": result.cost,
            "torch_version": torch.__version__,
        }
        print(f"best step {metadata['best_step']}: val {metadata['val_bpd']}, "
              f"test {metadata['test_bpd']} bits/dim", flush=True)
        return save_checkpoint(Path(out), config, net.state_dict(), metadata)


class UpscaleARDM(ARDM):
    """The upscale variant: stages of base-b digits, most significant first (b = 2)."""

    provides = frozenset({"upscale-stages"})
    train_branch: ClassVar[int | None] = 2


def random_ranks(batch: int, dims: int, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """(B, D): each row the position's place in a uniformly random order."""
    return torch.rand(batch, dims, generator=generator, device=device).argsort(1).argsort(1)


def step_log_probs(net: OrderAgnosticNet, digits: Digits, current: torch.Tensor,
                   known: torch.Tensor, stage: int) -> torch.Tensor:
    """(B, D, b) log-probs of each position's stage digit; unknown positions of the first
    stage show the absorbing state, later stages their coarser value."""
    values = current.where(known, digits.num_levels) if stage == 1 else current
    return digits.log_probs(net(values, known, stage), current, stage)


def elbo_nats(net: OrderAgnosticNet, digits: Digits, x: torch.Tensor,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-example unbiased estimate of the negative ELBO in nats: one random stage,
    step and order each (the training objective), times S for the sum over stages."""
    batch, dims = x.shape
    device = x.device
    stage = int(torch.randint(1, digits.stages + 1, (), generator=generator))
    t = torch.randint(1, dims + 1, (batch, 1), generator=generator).to(device)
    known = random_ranks(batch, dims, generator).to(device) < t - 1
    log_p = step_log_probs(net, digits, digits.current(x, known, stage), known, stage)
    nll = -log_p.gather(-1, digits.digit(x, stage)[..., None]).squeeze(-1)
    per_example = (nll * ~known).sum(1) * dims / (dims - t.squeeze(1) + 1)
    return per_example * digits.stages


@torch.no_grad()
def held_out_bpd(net: OrderAgnosticNet, digits: Digits, x: torch.Tensor, seed: int,
                 repeats: int = 4) -> float:
    """The training objective on held-out data, in bits/dim, with fixed randomness."""
    net.eval()
    generator = torch.Generator().manual_seed(seed + 1)
    x = x.to(digits.levels.device)
    total = sum(elbo_nats(net, digits, chunk, generator).sum().item()
                for _ in range(repeats) for chunk in x.split(512))
    return total / (repeats * x.numel() * math.log(2))


@torch.no_grad()
def loss_components(net: OrderAgnosticNet, digits: Digits, x: torch.Tensor, repeats: int,
                    seed: int, steps: int | None = None) -> torch.Tensor:
    """(S, D): L[s, i] = mean loss (nats) of a position generated at stage s with i known;
    with `steps`, measured at that many evenly spaced i and linearly interpolated (3072
    steps of CIFAR-10 are too many network passes to measure each)."""
    net.eval()
    generator = torch.Generator().manual_seed(seed + 2)
    x = x.to(digits.levels.device)
    batch, dims = x.shape
    measured = (torch.arange(dims) if steps is None or steps >= dims else
                torch.linspace(0, dims - 1, max(steps, 2)).round().long().unique())
    components = torch.zeros(digits.stages, len(measured))
    for stage in range(1, digits.stages + 1):
        target = digits.digit(x, stage)[..., None]
        for _ in range(repeats):
            ranks = random_ranks(batch, dims, generator).to(x.device)
            for column, known_count in enumerate(measured.tolist()):
                known = ranks < known_count
                log_p = step_log_probs(net, digits, digits.current(x, known, stage), known,
                                       stage)
                nll = -log_p.gather(-1, target).squeeze(-1)
                components[stage - 1, column] += (
                    (nll * ~known).sum() / (~known).sum()).item() / repeats
    if len(measured) == dims:
        return components
    return torch.stack([torch.from_numpy(np.interp(np.arange(dims), measured.numpy(),
                                                   row.numpy())).float()
                        for row in components])
