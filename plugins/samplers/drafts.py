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
    require,
    require_memory,
)

NGRAM_SMOOTHING = 0.5  # add-half counts: every level keeps some probability
MAX_NGRAM_ORDER = 8  # its table grows as (levels + 1)^(order - 1): 8 is ~10^17 entries at 256
NGRAM_BYTES_PER_ENTRY = 24  # float64 counts, their normalised copy, the float32 log table


def proposed(model: Any, x: torch.Tensor, flat: torch.Tensor, *args: Any, **kwargs: Any
             ) -> float:
    """A proposal's draft evaluations: one per value proposed, ``flat`` ``(n, k)``."""
    return float(flat.numel())


def inverse_cdf(cdf: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Draws ``(n,)`` from cumulative (unnormalised) weights ``(n, K)`` at `uniforms` ``(n,)``."""
    scaled = (uniforms * cdf[:, -1]).to(cdf.dtype)[:, None]
    return torch.searchsorted(cdf, scaled, right=True)[:, 0].clamp_(max=cdf.shape[-1] - 1)


class NGramDraft:
    """p(x_i | the `order` - 1 values before it in `positions`), from train-split counts.

    ``logits(x)`` gives ``(B, D, K)`` like a causal model; positions before the start
    see a padding level. ``propose`` draws k values in a row from table lookups alone:
    the context index of the next position is the last one's, shifted by the value just
    drawn. Fitting counts every train example once.
    """

    cached = False  # it proposes for the rows it is given; nothing to keep between rounds

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
        # a context's index: its values newest first, digits of base levels + 1
        self.back = torch.arange(1, order, device=device)
        self.digits = (self.levels + 1) ** torch.arange(order - 2, -1, -1, device=device)
        self.shape = tuple(dataset.shape)
        train = dataset.load("train").reshape(-1, dataset.dims).to(device)
        contexts, values = self._contexts(train, self._every(train)), train[:, self.positions]
        counts = torch.full(((self.levels + 1) ** (order - 1), self.levels), NGRAM_SMOOTHING,
                            dtype=torch.float64, device=device)
        counts.index_put_((contexts.flatten(), values.flatten()),
                          torch.ones(values.numel(), dtype=torch.float64, device=device),
                          accumulate=True)
        self.probs = counts / counts.sum(-1, keepdim=True)  # what a proposal is drawn from
        self.cdf = self.probs.cumsum(-1)
        self.cdf[:, -1] = 1.0  # a uniform below 1 always lands on a level
        self.table = self.probs.log().float()

    def begin(self, n: int, raster: bool) -> None:
        """A sample call starts: nothing to set up (the table is fitted once)."""

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

    @network_call(cost=proposed, positions=proposed)
    def propose(self, x: torch.Tensor, flat: torch.Tensor, fixed: torch.Tensor,
                uniforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Values ``(n, k)`` at each row's flat positions `flat` ``(n, k)`` (consecutive in
        the order, after the values of `x` ``(n, D)`` before them), drawn at `uniforms`
        ``(n, k)`` where not `fixed` (those keep `x`'s value), and the distributions
        ``(n, k, K)`` they were drawn from: one table lookup per value."""
        n, k = flat.shape
        # the first value's context: the order - 1 values before it, newest first, padded
        back = self.rank[flat[:, :1]] - self.back
        before = x.gather(1, self.positions[back.clamp(min=0)]).masked_fill_(back < 0,
                                                                            self.levels)
        index = (before * self.digits).sum(1)
        kept, contexts, columns = x.gather(1, flat), [], uniforms.T.contiguous()[..., None]
        newest = (self.levels + 1) ** (self.order - 2) if self.order > 1 else 0
        values = []
        for j in range(k):
            contexts.append(index)
            drawn = torch.searchsorted(self.cdf[index], columns[j], right=True)[:, 0]
            values.append(kept[:, j].where(fixed[:, j], drawn))
            # the context's digits, newest value first (`_contexts`): shift in the value
            index = index.div(self.levels + 1, rounding_mode="floor").add_(values[-1],
                                                                           alpha=newest)
        return torch.stack(values, 1), self.probs[torch.stack(contexts, 1)]


class ModelDraft:
    """A registered model with causal logits as a draft. Where the model has a cache with
    a ``window`` and draws in raster order (the transformer), the cache lives through a
    sample call and each proposed value is one cached step: slots are kept by position,
    so a rejected value costs nothing to roll back (the next round computes from the new
    start on, the position before it again). Otherwise each value is one full pass."""

    def __init__(self, model: CausalLogits, shape: tuple[int, ...]) -> None:
        self.model, self.shape, self.cache = model, shape, None

    @property
    def cached(self) -> bool:
        """Whether proposals go through the cache (then they take every row of the batch)."""
        return self.cache is not None

    def begin(self, n: int, raster: bool) -> None:
        """A sample call of `n` rows starts: a fresh cache, where the model has one."""
        incremental = getattr(self.model, "incremental", None)
        cache = incremental(n) if incremental is not None and raster else None
        self.cache = cache if cache is not None and hasattr(cache, "window") else None

    def propose(self, x: torch.Tensor, flat: torch.Tensor, fixed: torch.Tensor,
                uniforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """As `NGramDraft.propose`, one model call per value (through the cache: every row
        of the batch, `x` being all of them)."""
        n, k = flat.shape
        x, each, q = x.clone(), torch.arange(n, device=x.device), []
        for j in range(k):
            if self.cache is None:
                logits = self.model.logits(x.view(n, *self.shape))[each, flat[:, j]]
            elif j == 0:  # from the position before the start: its input is final now
                before = (flat[:, 0] - 1).clamp(min=0)
                logits = self.cache.window(x, before, 2)[each, (flat[:, 0] > 0).long()]
            else:
                logits = self.cache.window(x, flat[:, 0] + j, 1)[:, 0]
            q.append(logits.double().softmax(-1))
            drawn = inverse_cdf(q[-1].cumsum(-1), uniforms[:, j])
            x[each, flat[:, j]] = x[each, flat[:, j]].where(fixed[:, j], drawn)
        return x.gather(1, flat), torch.stack(q, 1)


def load_draft(name: str, dataset: Dataset, device: torch.device, positions: list[int],
               params: dict[str, Any], option: str | None = None) -> Any:
    """The draft `name`: ``ngram`` (fitted here, ``order`` from `params`) or a registered
    model with causal logits, loaded like the runner loads one (``checkpoint``, given as
    the parameter `option`); either has ``begin``, ``propose`` and ``cached``."""
    if name == "ngram":
        return draft_model(NGramDraft(dataset, positions, int(params.get("order", 3)), device))
    model = draft_model(require(load_model(name, dataset, device, option, **params),
                                CausalLogits, f"a draft ({name})"))
    return ModelDraft(model, tuple(dataset.shape))
