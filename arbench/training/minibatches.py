"""Where a recipe's minibatches come from: the hold-out split and batch orders.

Every draw comes from the recipe's own generator, so a resumed run (whose generator
state is restored) and every rank of a multi-process run draw the same examples.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["epoch_batches", "holdout", "random_batches", "split_train_val", "step_periods"]


def holdout(n: int, fraction: float, generator: torch.Generator, max_val: int | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, validation) of a random `fraction` of n examples held out for
    validation (at least 1, at most `max_val`): tuning never sees the test split."""
    order = torch.randperm(n, generator=generator)
    n_val = max(1, round(fraction * n))
    n_val = min(n_val, max_val) if max_val is not None else n_val
    return order[n_val:], order[:n_val]


def split_train_val(data: torch.Tensor, fraction: float, generator: torch.Generator,
                    max_val: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """`data` split by `holdout`: (train, validation)."""
    train, val = holdout(len(data), fraction, generator, max_val)
    return data[train], data[val]


def epoch_batches(data: torch.Tensor, batch_size: int, generator: torch.Generator,
                  *labels: torch.Tensor) -> Iterator[Any]:
    """One epoch in a random order, drawn when the epoch starts; with `labels`, tuples."""
    for idx in torch.randperm(len(data), generator=generator).split(batch_size):
        yield (data[idx], *(y[idx] for y in labels)) if labels else data[idx]


def random_batches(data: torch.Tensor, batch_size: int, count: int,
                   generator: torch.Generator) -> Iterator[torch.Tensor]:
    """`count` minibatches drawn with replacement, each when it is needed."""
    for _ in range(count):
        yield data[torch.randint(len(data), (batch_size,), generator=generator)]


def step_periods(steps: int, eval_every: int) -> list[int]:
    """Steps per period when validating every `eval_every` steps and after the last."""
    return [min(eval_every, steps - start) for start in range(0, steps, eval_every)]
