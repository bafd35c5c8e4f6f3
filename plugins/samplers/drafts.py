"""Drafts for speculative sampling: cheap causal models of the same data.

A draft proposes values that the target model then verifies, so it only has to be a
causal model over the same positions and levels: an n-gram fitted on the train split
(`NGramDraft`, counts over the previous ``order - 1`` values in the target's order), or
any registered model with causal logits (`load_draft`). Its network calls are counted
by arbench through the draft object (`arbench.draft_model`), apart from the target's.
"""

from __future__ import annotations

from typing import Any

import torch

from arbench import (
    CausalLogits,
    Dataset,
    Incompatible,
    draft_model,
    load_model,
    network_call,
    one_position,
    require,
    require_memory,
)

NGRAM_SMOOTHING = 0.5  # add-half counts: every level keeps some probability
MAX_NGRAM_ORDER = 8  # its table grows as (levels + 1)^(order - 1): 8 is ~10^17 entries at 256
NGRAM_BYTES_PER_ENTRY = 24  # float64 counts, their normalised copy, the float32 log table


class NGramDraft:
    """p(x_i | the `order` - 1 values before it in `positions`), from train-split counts.

    ``logits(x)`` gives ``(B, D, K)`` like a causal model; positions before the start
    see a padding level. Fitting counts every train example once.
    """

    def __init__(self, dataset: Dataset, positions: list[int], order: int,
                 device: torch.device) -> None:
        if dataset.num_levels is None:
            raise Incompatible("an n-gram draft counts discrete levels; this data is continuous")
        if order < 1:
            raise Incompatible(f"an n-gram draft needs order >= 1, not {order}")
        self.levels, self.order = int(dataset.num_levels), order
        entries = (self.levels + 1) ** (order - 1) * self.levels
        require_memory(entries * NGRAM_BYTES_PER_ENTRY, device,
                       f"an order-{order} n-gram draft over {self.levels} levels "
                       f"({entries:.3g} entries)", "lower speculative's draft_order")
        self.positions = torch.tensor(positions, device=device)
        self.rank = torch.empty_like(self.positions)  # where each flat position comes
        self.rank[self.positions] = torch.arange(len(positions), device=device)
        self.shape = tuple(dataset.shape)
        train = dataset.load("train").reshape(-1, dataset.dims).to(device)
        contexts, values = self._contexts(train, self._every(train)), train[:, self.positions]
        counts = torch.full(((self.levels + 1) ** (order - 1), self.levels), NGRAM_SMOOTHING,
                            dtype=torch.float64, device=device)
        counts.index_put_((contexts.flatten(), values.flatten()),
                          torch.ones(values.numel(), dtype=torch.float64, device=device),
                          accumulate=True)
        self.table = (counts / counts.sum(-1, keepdim=True)).log().float()

    def _every(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, D)``: every step of the order, for each row of `x`."""
        return torch.arange(len(self.positions), device=x.device).expand(len(x), -1)

    def _contexts(self, x: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` index of the context of each row's `steps` ``(B, T)`` (places in the
        order of `positions`): the ``order - 1`` values before, padded before the start."""
        ordered = x.reshape(len(x), -1)[:, self.positions]
        padded = torch.nn.functional.pad(ordered, (self.order - 1, 0), value=self.levels)
        index = torch.zeros_like(steps)
        for back in range(1, self.order):
            index = index * (self.levels + 1) + padded.gather(1, steps + self.order - 1 - back)
        return index

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        ordered = self.table[self._contexts(x, self._every(x))]
        out = torch.empty_like(ordered)
        out[:, self.positions] = ordered
        return out

    @network_call(positions=one_position)
    def logits_at(self, x: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
        """``(B, K)``: row b's logits at its flat position ``flat[b]`` alone (what a draft
        step needs, its context alone computed), equal to ``logits(x)[b, flat[b]]``."""
        return self.table[self._contexts(x, self.rank[flat][:, None])[:, 0]]


def load_draft(name: str, dataset: Dataset, device: torch.device, positions: list[int],
               params: dict[str, Any], option: str | None = None) -> Any:
    """The draft `name`: ``ngram`` (fitted here, ``order`` from `params`) or a registered
    model with causal logits, loaded like the runner loads one (``checkpoint``, given as
    the parameter `option`)."""
    if name == "ngram":
        return draft_model(NGramDraft(dataset, positions, int(params.get("order", 3)), device))
    return draft_model(require(load_model(name, dataset, device, option, **params),
                               CausalLogits, f"a draft ({name})"))
