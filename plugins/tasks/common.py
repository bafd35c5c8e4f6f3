"""What the conditional tasks share: held-out examples in data units, scored by metrics.

Every task scores the test split by default; ``split=validation`` (``--set
superres.split=validation``) scores the validation split instead, which is where
a sampler's defaults are tuned: tables report test.
"""

from __future__ import annotations

import torch

from arbench import CellContext, Incompatible, Param, Split, Task


class HeldOut(Task.Params):
    """The parameter every task scoring held-out examples shares."""

    split: Split = Param("test", "the split scored: test for tables, validation for tuning")


def held_out_signals(cell: CellContext, n_examples: int, split: str = "test") -> torch.Tensor:
    """The first `n_examples` examples of `split` as continuous values on the cell's device."""
    if cell.dataset.num_levels is None:
        raise Incompatible(f"dataset '{cell.dataset.name}' is continuous; this task needs levels")
    x = cell.dataset.load(split)[:n_examples].to(cell.device)
    return cell.dataset.continuous(x)

