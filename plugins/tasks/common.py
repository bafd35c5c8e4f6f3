"""What the conditional tasks share: held-out examples in data units, scored by metrics."""

from __future__ import annotations

import torch

from arbench.contracts import CellContext, Incompatible


def held_out_signals(cell: CellContext, n_examples: int) -> torch.Tensor:
    """The first `n_examples` test examples as continuous values on the cell's device."""
    if cell.dataset.num_levels is None:
        raise Incompatible(f"dataset '{cell.dataset.name}' is continuous; this task needs levels")
    x = cell.dataset.load("test")[:n_examples].to(cell.device)
    return cell.dataset.continuous(x)

