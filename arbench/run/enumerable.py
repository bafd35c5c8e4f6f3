"""Causal models small enough to enumerate: what exactness certificates sample from.

With D values of K levels a model has K^D sequences, so the exact probability of each
is known (`arbench.run.exactness.joint_probabilities`). `TableModel` draws a random
categorical for every prefix: no structure a sampler could exploit by accident, and
every method a plugin sampler may call on a causal model (``logits``) is plain. Its
``incremental`` is None, so samplers take their uncached path on it.
`WindowTableModel` is the same distribution behind a per-value cache that also offers
``window`` (as the transformer's key/value cache does), so the cached paths are
certified too: its cache keeps, like a key/value cache, the history each position was
computed from, and a sampler that forgets to recompute a position it changed reads a
stale history, as it would from the transformer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch

from arbench.plugin.capabilities import Logits
from arbench.plugin.contracts import Dataset, Model
from arbench.run.exactness import all_sequences, joint_probabilities


class TableModel(Logits, Model):
    """A causal model over ``(dims,)`` sequences of `levels` levels whose conditional at
    each prefix is a random categorical (logits ~ N(0, spread^2)), from `seed`."""

    provides = frozenset({"causal-conditionals", "causal-logits"})

    def __init__(self, dims: int, levels: int, seed: int, spread: float = 1.5) -> None:
        super().__init__()
        self.dims, self.levels = dims, levels
        prefixes = sum(levels**i for i in range(dims))
        generator = torch.Generator().manual_seed(seed)
        self.table = spread * torch.randn(prefixes, levels, generator=generator)
        self.offset = torch.tensor([sum(levels**j for j in range(i)) for i in range(dims)])

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, D, K)``: row i from the table entry of the prefix x_<i."""
        x = x.reshape(len(x), self.dims).cpu().long()
        index = torch.zeros(len(x), self.dims, dtype=torch.long)
        for i in range(1, self.dims):
            index[:, i] = index[:, i - 1] * self.levels + x[:, i - 1]
        return self.table[index + self.offset]

    @classmethod
    def load(cls, dataset: Dataset, device: torch.device, *, family: str,
             checkpoint: Path | None, **params: Any) -> Model:
        raise TypeError("a TableModel is built, not loaded: TableModel(dims, levels, seed)")

    @classmethod
    def train(cls, dataset: Dataset, out: Any, seed: int = 0, *, family: str,
              **options: Any) -> Any:
        raise TypeError("a TableModel is random by construction: nothing to train")


class WindowTableModel(TableModel):
    """A `TableModel` whose `incremental` cache draws value by value and verifies windows."""

    def incremental(self, n: int) -> TableCache:
        return TableCache(self, n)


class TableCache:
    """The per-value cache of a `WindowTableModel` for `n` rows.

    ``logits(previous)`` steps through the positions in raster order. ``window(x, starts,
    width)`` gives each row's logits at ``starts .. starts + width - 1``: like a key/value
    cache, the input of position i is x_{i-1}, and the inputs before a row's
    ``start - 1`` are the ones an earlier call consumed (`consumed`), not `x`'s. Positions
    past the end repeat the last one's logits (the transformer's spare slots)."""

    def __init__(self, model: TableModel, n: int) -> None:
        self.model, self.n, self.t = model, n, 0
        self.drawn = torch.zeros(n, model.dims, dtype=torch.long)
        self.consumed = torch.zeros(n, model.dims, dtype=torch.long)

    def logits(self, previous: torch.Tensor | None) -> torch.Tensor:
        if previous is not None:
            self.drawn[:, self.t - 1] = previous.cpu().long()
        logits = self.model.logits(self.drawn)[:, min(self.t, self.model.dims - 1)]
        self.t += 1
        return logits

    def window(self, x: torch.Tensor, starts: torch.Tensor, width: int) -> torch.Tensor:
        """``(n, width, K)``: each row's logits from its start (see the class docstring)."""
        dims = self.model.dims
        x, starts = x.reshape(self.n, dims).cpu().long(), starts.cpu().long()[:, None]
        column = torch.arange(dims)[None]
        fresh = (column >= starts - 1) & (column < starts - 1 + width)
        history = torch.where(column < starts - 1, self.consumed, x)
        self.consumed = torch.where(fresh, x, self.consumed)
        where = (starts + torch.arange(width)[None]).clamp(max=dims - 1)
        return self.model.logits(history).gather(
            1, where[..., None].expand(-1, -1, self.model.levels))


class TableData(Dataset):
    """Sequences of a `TableModel`'s shape; train and test splits drawn from `origin`
    (another table model: what an n-gram draft is fitted on)."""

    modality: ClassVar[str] = "sequence"

    def __init__(self, origin: TableModel, size: int = 2000) -> None:
        super().__init__()
        self.name, self.origin, self.size = "table", origin, size
        self.shape, self.num_levels = (origin.dims,), origin.levels

    def load(self, split: str) -> torch.Tensor:
        generator = torch.Generator().manual_seed(0 if split == "train" else 1)
        probabilities = joint_probabilities(self.origin, self.origin.dims, self.origin.levels)
        index = torch.multinomial(probabilities, self.size, replacement=True,
                                  generator=generator)
        return all_sequences(self.origin.dims, self.origin.levels)[index]
