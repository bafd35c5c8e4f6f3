"""The training loop of the small smoothing models: Adam, cosine decay, best-on-validation.

The 2-D MADEs and the digits pair differ in their loss and their validation
score, not in how they are fitted, so both hand their pieces to `fit`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

FIT_DEFAULTS: dict[str, Any] = {"steps": 20000, "batch_size": 512, "lr": 3e-3,
                                "eval_every": 250}


def fit(net: nn.Module, train_loss: Callable[[torch.Tensor], torch.Tensor],
        val_nats: Callable[[], float], train: torch.Tensor, opts: dict[str, Any],
        generator: torch.Generator) -> tuple[float, int]:
    """Minimise `train_loss` on minibatches of `train` for ``opts["steps"]`` Adam steps
    with a cosine schedule; every ``eval_every`` steps score `val_nats` (lower is better)
    and keep the best state. Leaves `net` in eval mode holding that state; returns its
    score and step."""
    optimizer = torch.optim.Adam(net.parameters(), lr=opts["lr"])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, opts["steps"])
    best, best_state, best_step = math.inf, copy.deepcopy(net.state_dict()), 0
    for step in range(1, opts["steps"] + 1):
        net.train()
        batch = train[torch.randint(len(train), (opts["batch_size"],), generator=generator)]
        loss = train_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % opts["eval_every"] == 0 or step == opts["steps"]:
            net.eval()
            with torch.no_grad():
                score = val_nats()
            if score < best:
                best, best_state, best_step = score, copy.deepcopy(net.state_dict()), step
            if step % (8 * opts["eval_every"]) == 0 or step == opts["steps"]:
                print(f"step {step:6d}  train {loss.item():.4f}  val {score:.4f}"
                      f"{'  *' if best_step == step else ''}", flush=True)
    net.load_state_dict(best_state)
    net.eval()
    return best, best_step


def split_train_val(data: torch.Tensor, fraction: float, generator: torch.Generator
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """A random `fraction` of the train split held out for validation: (train, val)."""
    order = torch.randperm(len(data), generator=generator)
    n_val = max(1, round(fraction * len(data)))
    return data[order[n_val:]], data[order[:n_val]]
