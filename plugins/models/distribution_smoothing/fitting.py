"""The step-based preset of the training loop shared by the small smoothing models.

The 2-D MADEs and the digits pair differ in their loss and their validation
score, not in how they are fitted: Adam with a cosine decay over ``steps``
random minibatches, scored every ``eval_every`` steps (`arbench.training.loop`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from arbench import (
    TrainingLoop,
    TrainingResult,
    loop_options,
    partial_path,
    random_batches,
    step_periods,
)

FIT_DEFAULTS: dict[str, Any] = {"steps": 20000, "batch_size": 512, "lr": 3e-3,
                                "eval_every": 250}


def fit(net: nn.Module, train_loss: Callable[[torch.Tensor], torch.Tensor],
        val_nats: Callable[[], float], train: torch.Tensor, opts: dict[str, Any],
        generator: torch.Generator, out: Path, seed: int) -> tuple[float, int, TrainingResult]:
    """Minimise `train_loss` for ``opts["steps"]`` Adam steps, keeping the state with the
    lowest `val_nats`; returns that score, its step and the loop's result (resumable
    from `out`'s partial state)."""
    optimizer = torch.optim.Adam(net.parameters(), lr=opts["lr"])
    periods = step_periods(opts["steps"], opts["eval_every"])
    result = TrainingLoop(
        net, optimizer, loss=lambda batch, _: train_loss(batch),
        evaluate=lambda _: val_nats(), periods=len(periods),
        batches=lambda period: random_batches(train, opts["batch_size"], periods[period - 1],
                                              generator),
        schedule=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, opts["steps"]),
        generator=generator, resume=partial_path(out), fingerprint={"seed": seed, **opts},
        label="evaluation", log_every=8, **loop_options(opts)).run()
    return result.score, sum(periods[:result.period]), result
