"""A causal model whose conditional at every prefix is a random categorical.

With D values of K levels it has K^D sequences, few enough to enumerate: the exact
distribution that `arbench.run.exactness` certifies samplers against. Not registered:
tests and benchmarks/exactness.py build it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch

from arbench import Dataset, Logits, Model, all_sequences, joint_probabilities


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
        x = x.reshape(len(x), self.dims).cpu()
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


class TableData(Dataset):
    """Sequences of a `TableModel`'s shape; train and test splits drawn from `origin`
    (another table model: what an n-gram draft is fitted on)."""

    modality: ClassVar[str] = "text"

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
