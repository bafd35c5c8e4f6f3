"""Drafts for speculative sampling: cheap causal models of the same data.

A draft proposes values that the target model then verifies, so it only has to be a
causal model over the same positions and levels: an n-gram fitted on the train split
(`NGramDraft`, counts over the previous ``order - 1`` values in the target's order), the
row's own earlier values (`LookupDraft`, prompt lookup), or any registered model with
causal logits (`load_draft`). Its network calls are counted
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
from arbench_plugins.samplers.ancestral import FromStart, window_cache

NGRAM_BYTES_PER_ENTRY = 36  # counts, probabilities and cdf (float64) while fitting; kept: cdf,
# probabilities and log table, next state
MAX_NGRAM_ORDER = 8  # context keys of order - 1 digits of base levels + 2 stay in int64


def proposed(model: Any, x: torch.Tensor, flat: torch.Tensor, *args: Any, **kwargs: Any
             ) -> float:
    """A proposal's draft evaluations: one per value proposed, ``flat`` ``(n, k)``."""
    return float(flat.numel())


def inverse_cdf(cdf: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Draws ``(n,)`` from cumulative (unnormalised) weights ``(n, K)`` at `uniforms` ``(n,)``."""
    scaled = (uniforms * cdf[:, -1]).to(cdf.dtype)[:, None]
    return torch.searchsorted(cdf, scaled, right=True)[:, 0].clamp_(max=cdf.shape[-1] - 1)


class NGramDraft:
    """p(x_i | up to `order` - 1 values before it in `positions`), from train-split counts:
    Witten-Bell interpolation (Witten and Bell, 1991; Chen and Goodman, 1998) of every
    context length, so a context seen a few times leans on its shorter suffixes instead of
    on smoothed counts of its own (acceptance against the medium text transformer: 0.79 at
    order 5, against 0.70 with add-half counts).

    Contexts are the states of an automaton: a history's state is its longest suffix (at
    most ``order - 1`` values, padded before the start) seen in training, and
    ``next[s, v]`` the state after value v. ``propose`` draws k values in a row with one
    cdf search and one table lookup each, and memory grows with the contexts seen, not
    with (levels + 1)^(order - 1). ``logits(x)`` gives ``(B, D, K)`` like a causal model.
    """

    cached = False  # it proposes for the rows it is given (those not finished)

    def __init__(self, dataset: Dataset, positions: list[int], order: int,
                 device: torch.device) -> None:
        if dataset.num_levels is None:
            raise Incompatible("an n-gram draft counts discrete levels; this data is continuous")
        if order < 1:
            raise Incompatible(f"an n-gram draft needs order >= 1, not {order}")
        self.levels, self.order = int(dataset.num_levels), order
        # a context's key: digit j is the value j + 1 back, plus 1 (0: none, levels + 1:
        # before the start); its suffix of m values is the key modulo base^m
        self.base = self.levels + 2
        if self.base ** (order - 1) >= 2 ** 63:
            raise Incompatible(f"an order-{order} n-gram over {self.levels} levels has context "
                               f"keys beyond 64 bits; lower speculative's draft_order")
        self.powers = self.base ** torch.arange(order, device=device)
        self.positions = torch.tensor(positions, device=device)
        self.rank = torch.empty_like(self.positions)  # where each flat position comes
        self.rank[self.positions] = torch.arange(len(positions), device=device)
        self.back = torch.arange(1, order, device=device)
        self.shape = tuple(dataset.shape)
        self.chain: tuple[torch.Tensor, torch.Tensor] | None = None  # see `propose`
        self._fit(dataset.load("train").reshape(-1, dataset.dims).to(device)[:, self.positions])

    def _fit(self, ordered: torch.Tensor) -> None:
        """Counts of every context length, interpolated shortest first, and the transitions."""
        keys = self._keys(ordered)[None] % self.powers[:, None, None]  # (order, N, T)
        self.states, inverse = torch.unique(keys.flatten(), return_inverse=True)  # sorted
        require_memory(len(self.states) * self.levels * NGRAM_BYTES_PER_ENTRY,
                       self.states.device,
                       f"an order-{self.order} n-gram draft over {self.levels} levels "
                       f"({len(self.states):,} contexts seen)", "lower speculative's draft_order")
        counts = torch.zeros(len(self.states), self.levels, dtype=torch.float64,
                             device=keys.device)
        counts.index_put_((inverse, ordered.expand(self.order, -1, -1).flatten()),
                          torch.ones(inverse.numel(), dtype=torch.float64, device=keys.device),
                          accumulate=True)
        total = counts.sum(-1, keepdim=True)  # every state was followed by some value
        seen = total / (total + (counts > 0).sum(-1, keepdim=True))  # Witten-Bell's lambda
        length = (self.states[:, None] >= self.powers).sum(-1)  # values in each context
        self.probs = torch.empty_like(counts)
        for m in range(self.order):  # each context's shorter suffix is done before it
            at = (length == m).nonzero()[:, 0]
            suffix = self.states[at] % self.powers[max(m - 1, 0)]
            shorter = (self.probs[torch.searchsorted(self.states, suffix)] if m else
                       1.0 / self.levels)
            self.probs[at] = seen[at] * counts[at] / total[at] + (1 - seen[at]) * shorter
        # every state's cdf in one sorted sequence: state s's at 2s + cdf, its last value's
        # end at 2s + 1.5 (a uniform's 2s + u, rounded up or not, lands in s's own row)
        cdf = self.probs.cumsum(-1)
        cdf[:, -1] = 1.5
        self.cdf = cdf.add_(2 * torch.arange(len(cdf), device=keys.device)[:, None]).flatten()
        self.table = self.probs.log().float()
        # a proposal's q, in the dtype targets verify in; the zero row (state `stop`) is
        # the one after the k-th value, where verification draws from the target alone
        self.probs = torch.nn.functional.pad(self.probs.float(), (0, 0, 0, 1))
        self.stop = 2.0 * len(self.states)
        newest = self.states % self.powers[max(self.order - 2, 0)]
        after = newest[:, None] * self.base + torch.arange(1, self.levels + 1, device=keys.device)
        # state s, value v: the next state's 2s', where its cdf starts
        self.next = 2.0 * self._state(after).flatten().double()

    def _keys(self, ordered: torch.Tensor) -> torch.Tensor:
        """``(B, T)``: the key of the ``order - 1`` values before each step of each row."""
        padded = torch.nn.functional.pad(ordered + 1, (self.order - 1, 0), value=self.levels + 1)
        steps = ordered.shape[1]
        key = torch.zeros_like(ordered)
        for m in range(1, self.order):
            key += padded[:, self.order - 1 - m:self.order - 1 - m + steps] * self.powers[m - 1]
        return key

    def _state(self, key: torch.Tensor) -> torch.Tensor:
        """The state of contexts `key` (any shape): the longest suffix seen in training
        (the empty context always is; the suffixes of a seen context are seen)."""
        suffixes = key[..., None] % self.powers
        at = torch.searchsorted(self.states, suffixes).clamp_(max=len(self.states) - 1)
        longest = (self.states[at] == suffixes).sum(-1, keepdim=True) - 1
        return at.gather(-1, longest)[..., 0]

    def begin(self, n: int, raster: bool) -> None:
        """A sample call starts: no states kept from another."""
        self.chain = None

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        ordered = x.reshape(len(x), -1)[:, self.positions]
        out = torch.empty(*ordered.shape, self.levels, device=x.device)
        out[:, self.positions] = self.table[self._state(self._keys(ordered))]
        return out

    @network_call(cost=proposed, positions=proposed)
    def propose(self, x: torch.Tensor, flat: torch.Tensor, fixed: torch.Tensor | None,
                uniforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Values ``(n, k)`` at each row's flat positions `flat` ``(n, k)`` (consecutive in
        the order, after the values of `x` ``(n, D)`` before them), drawn at `uniforms`
        ``(n, k)`` where not `fixed` (those keep `x`'s value; None: none), and the distributions
        ``(n, k + 1, K)`` they were drawn from, the last all zeros (after the k-th value):
        per value one search of the states' cdf and one transition."""
        n, k = flat.shape
        first = self.rank.index_select(0, flat[:, 0])
        picks, starts = [], [self._start(x, first)]  # 2s before each value, s its state
        for j in range(k):
            pick = torch.searchsorted(self.cdf, starts[j] + uniforms[:, j], right=True)
            if fixed is not None:  # a fixed value is kept, and is the context after it
                kept = x.gather(1, flat[:, j, None])[:, 0]
                pick = pick.where(~fixed[:, j], (starts[j] * (self.levels / 2)).long() + kept)
            picks.append(pick)
            starts.append(self.next.index_select(0, pick))
        chain = torch.cat(starts)  # (k + 1) * n
        self.chain = (chain.view(k + 1, n).T, first + 1)
        states = chain.long().div_(2, rounding_mode="floor")
        states[k * n:] = len(self.states)  # q's zero row: after the k-th value
        q = self.probs.index_select(0, states).view(k + 1, n, self.levels).transpose(0, 1)
        return torch.cat(picks).view(k, n).T % self.levels, q

    def _start(self, x: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
        """2s for the state before rank `first` ``(n,)`` of each row: one transition from the
        last proposal's states (kept up to the value verification drew after them) when it
        was for as many rows (rows only finish: the same rows), else the longest seen
        suffix of the values before it. A wrong state would cost acceptance, never
        exactness: a value's q is the state's it was drawn from."""
        if self.chain is not None and len(self.chain[1]) == len(first):
            chain, after = self.chain
            kept = (first - after).clamp_(0, chain.shape[1] - 1)[:, None]  # values kept
            value = x.gather(1, self.positions.index_select(0, (first - 1).clamp_(min=0))[:, None])
            return self.next.index_select(0, (chain.gather(1, kept) * (self.levels / 2)).long()
                                          .add_(value)[:, 0])
        back = first[:, None] - self.back  # newest first
        before = x.gather(1, self.positions[back.clamp(min=0)]).add(1).masked_fill_(
            back < 0, self.levels + 1)
        return 2.0 * self._state((before * self.powers[:-1]).sum(1))


class ModelDraft:
    """A registered model with causal logits as a draft. Where the model has a cache with
    a ``window`` and draws in raster order (the transformer), the cache lives through a
    sample call and each proposed value is one cached step: slots are kept by position,
    so a rejected value costs nothing to roll back (the next round computes from the new
    start on, the position before it again). Otherwise each value is one full pass."""

    def __init__(self, model: CausalLogits, shape: tuple[int, ...]) -> None:
        self.model, self.shape = model, shape
        self.cache: FromStart | None = None

    @property
    def cached(self) -> bool:
        """Whether proposals go through the cache (then they take every row of the batch)."""
        return self.cache is not None

    def begin(self, n: int, raster: bool) -> None:
        """A sample call of `n` rows starts: a fresh cache, where the model has one."""
        self.cache = window_cache(self.model, n) if raster else None

    def propose(self, x: torch.Tensor, flat: torch.Tensor, fixed: torch.Tensor | None,
                uniforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """As `NGramDraft.propose`, one model call per value (through the cache: every row
        of the batch, `x` being all of them)."""
        n, k = flat.shape
        x, each, q, values = x.clone(), torch.arange(n, device=x.device), [], []
        kept = x.gather(1, flat)
        for j in range(k):
            if self.cache is None:
                logits = self.model.logits(x.view(n, *self.shape))[each, flat[:, j]]
            elif j == 0:  # from the position before the start: its input is final now
                before = (flat[:, 0] - 1).clamp(min=0)
                logits = self.cache.window(x, before, 2)[each, (flat[:, 0] > 0).long()]
            else:
                logits = self.cache.window(x, flat[:, 0] + j, 1)[:, 0]
            q.append(logits.softmax(-1))  # in the model's dtype, as the target verifies
            drawn = inverse_cdf(q[-1].cumsum(-1), uniforms[:, j])
            values.append(drawn if fixed is None else kept[:, j].where(fixed[:, j], drawn))
            x[each, flat[:, j]] = values[-1]  # the next value's input
        q.append(torch.zeros_like(q[0]))  # none after the k-th value
        return torch.stack(values, 1), torch.stack(q, 1)


class LookupDraft:
    """Prompt lookup (Saxena, 2023; ``prompt_lookup_num_tokens`` in transformers): up to k
    values that followed the latest earlier occurrence of the row's last ``order - 1``
    values (fewer, down to one, when those never occurred before), in the row so far:
    the prompt and what was drawn. Nothing is fitted. A proposal is certain (q one-hot),
    so a value is kept with probability p(value). Where no row has an occurrence it
    proposes nothing (the round is a plain step); a row with a shorter run than another's
    repeats its last value. Raster order only."""

    cached = False

    def __init__(self, levels: int, order: int) -> None:
        self.levels, self.longest = levels, max(order - 1, 1)

    def begin(self, n: int, raster: bool) -> None:
        """A sample call starts: nothing to reset (the rows are read afresh each time)."""
        if not raster:
            raise Incompatible("the prompt-lookup draft reads each row in raster order; "
                               "this model draws in another")

    def propose(self, x: torch.Tensor, flat: torch.Tensor, fixed: torch.Tensor | None,
                uniforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """As `NGramDraft.propose`, but ``(n, j)`` values for some j <= k (the longest run
        found) after each row's values before ``flat[:, 0]``, and their one-hot
        distributions ``(n, j + 1, K)``."""
        rows = x.tolist()
        found = [followers(row[:start], flat.shape[1], self.longest)
                 for row, start in zip(rows, flat[:, 0].tolist(), strict=True)]
        width = max(map(len, found))
        padded = [run + [run[-1] if run else row[start - 1] if start else 0] * (width - len(run))
                  for run, row, start in zip(found, rows, flat[:, 0].tolist(), strict=True)]
        return self._certain(x, flat[:, :width], None if fixed is None else fixed[:, :width],
                             padded)

    @network_call(cost=proposed, positions=proposed)
    def _certain(self, x: torch.Tensor, flat: torch.Tensor, fixed: torch.Tensor | None,
                 found: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """The values `found` at `flat` ``(n, j)`` (fixed ones kept), counted as j draft
        evaluations per row, and their one-hot distributions with none after the j-th."""
        values = torch.tensor(found, dtype=torch.long, device=x.device).view(flat.shape)
        if fixed is not None:
            values = values.where(~fixed, x.gather(1, flat))
        q = torch.nn.functional.one_hot(values, self.levels).to(torch.float32)
        return values, torch.nn.functional.pad(q, (0, 0, 0, 1))


def followers(history: list[int], k: int, longest: int) -> list[int]:
    """Up to k values after the latest earlier occurrence of the longest suffix of
    `history` (at most `longest` values) that occurred before; none without one."""
    for size in range(min(longest, len(history) - 1), 0, -1):
        tail = history[-size:]
        for begin in range(len(history) - size - 1, -1, -1):
            if history[begin:begin + size] == tail:
                return history[begin + size:begin + size + k]
    return []


def load_draft(name: str, dataset: Dataset, device: torch.device, positions: list[int],
               params: dict[str, Any], option: str | None = None) -> Any:
    """The draft `name`: ``ngram`` (fitted here, ``order`` from `params`), ``lookup``
    (prompt lookup, ``order`` from `params`) or a registered model with causal logits,
    loaded like the runner loads one (``checkpoint``, given as the parameter `option`);
    each has ``begin``, ``propose`` and ``cached``."""
    if name == "ngram":
        return draft_model(NGramDraft(dataset, positions, int(params.get("order", 3)), device))
    if name == "lookup":
        return draft_model(LookupDraft(int(dataset.num_levels or 0), int(params.get(
            "order", 3))))
    model = draft_model(require(load_model(name, dataset, device, option, **params),
                                CausalLogits, f"a draft ({name})"))
    return ModelDraft(model, tuple(dataset.shape))
