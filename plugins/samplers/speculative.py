"""Speculative sampling: a cheap draft proposes k values, the model checks them in one call.

Leviathan, Kalman and Matias (ICML 2023) and Chen et al. (2023). From the final
prefix, the draft q proposes y_1..y_k one after another; one call of the target p
gives its conditionals at all k positions and the one after. Value y_j is accepted
with probability min(1, p_j(y_j) / q_j(y_j)), in order; at the first rejection the
value is drawn from the residual max(0, p_j - q_j) (normalised) and the step ends;
when all k are accepted, one more value comes from p_{k+1}. Every value then follows
p exactly: the samples are the model's distribution (`exactness = "distribution"`,
certified by tests/test_exactness.py), not ancestral's samples for the seed.

The draft (``draft``) is an n-gram fitted on the train split (``ngram``, the default;
``draft_order``), prompt lookup (``lookup``: what followed the row's last values earlier
in it, the prompt included; nothing fitted) or any registered model with causal logits
of the same data (``draft=pixelcnn``, ``draft_checkpoint=PATH``), behind one method,
``propose`` (`arbench_plugins.samplers.drafts`): table lookups for the n-gram, a search
of the row for prompt lookup, one cached step per value for a model whose cache has a
window. Each target call is one network call
of the NFE axis; the draft's calls are counted by arbench through the draft and
recorded in the diagnostics with the acceptance rate and the mean values per target
call (Spec-Bench's mean accepted tokens, MAT). A target whose cache has a ``window``
(the transformer's key/value cache) verifies through it: k + 1 positions per row per
call instead of all D, every row of the batch at its own prefix (the call counts each
row). Observed positions before the first drawn one (a prompt) are the starting prefix,
computed in the first call; later ones (super-resolution, inpainting) are fixed and
always accepted: the model's conditionals of the others given them, as Jacobi decoding
samples. A round
draws its random numbers up front (the draft's uniforms, then the acceptance's and the
last draw's) and reads nothing back to the host but the loop's test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, cast

import torch

from arbench import (
    MAX_POSITIONS,
    CausalLogits,
    Condition,
    Dataset,
    Incompatible,
    LikelihoodOutput,
    Model,
    Param,
    ParameterError,
    SampleOutput,
    Sampler,
    require,
)
from arbench_plugins.samplers.ancestral import Ancestral, positions, window_cache
from arbench_plugins.samplers.drafts import MAX_NGRAM_ORDER, inverse_cdf, load_draft
from arbench_plugins.samplers.jacobi import observed_start

RESIDUAL_FLOOR = 1e-20  # of p in a residual draw (`_State.verify`)
TABLE_DRAFTS = ("ngram", "lookup")  # drafts built here, of `draft_order`: no model


class Rule:
    """The speculative rule, one method per part, so that tests/test_exactness.py can break
    one part at a time and see the certificate fail."""

    @staticmethod
    def accept(p_value: torch.Tensor, q_value: torch.Tensor,
               uniform: torch.Tensor) -> torch.Tensor:
        """Keep a draft value with probability min(1, p(y) / q(y))."""
        return uniform < p_value / q_value

    @staticmethod
    def residual(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Where a rejected value is drawn from: max(0, p - q), normalised by the draw."""
        return (p - q).clamp(min=0)


@dataclass
class Window:
    """One step's k proposals for the active rows and the position after them, ``(n, k + 1)``:
    where each is read and written (past the last position: the state's spare column),
    which are not drafted (observed, or past the last position; None: none); the proposed values
    ``(n, k)`` and the draft's probabilities ``(n, k + 1, K)`` (zero after the k-th)."""

    reads: torch.Tensor
    writes: torch.Tensor
    fixed: torch.Tensor | None
    values: torch.Tensor
    q: torch.Tensor


class Speculative(Sampler):
    """Draft k values, verify them in one target call: the model's distribution exactly."""

    exactness = "distribution"
    rule: ClassVar[type[Rule]] = Rule
    class Params(Sampler.Params):
        k: int = Param(4, "values the draft proposes per target call (at most the positions "
                          "left are proposed)", ge=1, le=MAX_POSITIONS)
        draft: str = Param("ngram", "the draft: ngram, lookup (prompt lookup: what "
                                "followed the last values earlier in the row), or a "
                                "registered model with causal logits of the same data")
        draft_order: int = Param(3, "the n-gram draft's order (values of context + 1), "
                                    "interpolated with every shorter context (Witten-Bell); "
                                    "lookup: the longest suffix matched + 1",
                                 ge=1, le=MAX_NGRAM_ORDER)
        draft_checkpoint: str | None = Param(None, "the draft model's checkpoint")

    params: Params

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        given = self.params.model_fields_set
        if self.params.draft in TABLE_DRAFTS and self.params.draft_checkpoint is not None:
            kind = "n-gram" if self.params.draft == "ngram" else "prompt-lookup"
            raise ParameterError("speculative.draft_checkpoint is for a model draft; the "
                                 f"{kind} draft (draft={self.params.draft}) is built here: "
                                 "give speculative.draft=MODEL too, or drop the checkpoint")
        if self.params.draft not in TABLE_DRAFTS and "draft_order" in given:
            raise ParameterError(f"speculative.draft_order is the n-gram draft's; the draft "
                                 f"{self.params.draft!r} is a model: drop draft_order")
        self._drafts: dict[tuple[str, ...], Any] = {}

    def models_used(self) -> dict[str, dict[str, Any]]:
        """A model draft with its checkpoint (the n-gram is fitted here: no model)."""
        if self.params.draft in TABLE_DRAFTS:
            return {}
        checkpoint = self.params.draft_checkpoint
        return {self.params.draft: {"checkpoint": checkpoint} if checkpoint else {}}

    @torch.no_grad()
    def sample(self, model: Model | None, dataset: Dataset, n: int, budget: int | None,
               generator: torch.Generator, condition: Condition | None = None) -> SampleOutput:
        target = require(model, CausalLogits, "speculative sampling")
        state = _State.start(target, dataset, n, generator, condition)
        state.cache = _window_cache(target, state.order, n)
        draft = self._draft(dataset, state.order.tolist(), generator.device)
        draft.begin(n, _raster(state.order))
        state.reach(self.params.k)
        every = torch.arange(n, device=generator.device)
        calls = 0
        while calls < (budget or dataset.dims):
            left = dataset.dims - int(state.prefix.min())  # of the row furthest behind
            if not left:
                break
            # a cached draft, like the target's cache, computes every row at its position
            rows = every if draft.cached else state.active().nonzero().squeeze(1)
            window = self._propose(draft, state, rows, min(self.params.k, left), generator)
            state.verify(target, rows, window, generator, self.rule)
            calls += 1
        return state.output(dataset, condition, calls, budget, k=self.params.k)

    def nll(self, model: Model | None, x: torch.Tensor, budget: int | None) -> LikelihoodOutput:
        """The model's exact likelihood: one parallel pass, as ancestral scores."""
        return Ancestral().nll(model, x, None)

    def _draft(self, dataset: Dataset, order: list[int], device: torch.device) -> Any:
        """The draft for this dataset and device, fitted or loaded once per sampler."""
        name = self.params.draft
        key = (name, dataset.name, str(device), str(self.params.draft_checkpoint))
        if key not in self._drafts:
            params = ({"order": self.params.draft_order} if name in TABLE_DRAFTS else
                      self.models_used()[name])
            self._drafts[key] = load_draft(name, dataset, device, order, params,
                                           "speculative.draft_checkpoint")
        return self._drafts[key]

    @staticmethod
    def _propose(draft: Any, state: _State, rows: torch.Tensor, k: int,
                 generator: torch.Generator) -> Window:
        """The draft's k proposals for `rows` (or fewer, where the draft found fewer),
        written into the state's values."""
        every = len(rows) == len(state.x)  # always at batch 1: no copies
        index = (state.prefix if every else state.prefix[rows])[:, None] + state.steps[:k + 1]
        reads, writes = state.reads.take(index), state.writes.take(index)
        # one row (at batch 1, or the last left) has no positions past the end in its window
        fixed = (None if len(rows) == 1 and not state.any_observed else
                 state.observed.gather(1, writes) if every else
                 state.observed[rows[:, None], writes])
        uniforms = torch.rand(len(rows), k, generator=generator, device=rows.device,
                              dtype=torch.float64)
        values, q = draft.propose(state.x if every else state.x[rows], reads[:, :k],
                                  None if fixed is None else fixed[:, :k], uniforms)
        if values.shape[1] < k:  # fewer proposed (prompt lookup without a match)
            k = values.shape[1]
            reads, writes = reads[:, :k + 1], writes[:, :k + 1]
            fixed = None if fixed is None else fixed[:, :k + 1]
        if every:
            state.values.scatter_(1, writes[:, :k], values)
        else:
            state.values[rows[:, None], writes[:, :k]] = values
        return Window(reads, writes, fixed, values, q)


def _raster(order: torch.Tensor) -> bool:
    return torch.equal(order, torch.arange(len(order), device=order.device))


def _window_cache(target: CausalLogits, order: torch.Tensor, n: int) -> Any:
    """The target's window cache (`window_cache`) when it draws in raster order:
    verification then computes k + 1 positions per row instead of all D. None: a full
    call per verification."""
    return window_cache(target, n) if _raster(order) else None


class _State:
    """The batch being sampled: values (flat), each row's final prefix in the model's
    order, the observed positions, and the counts the diagnostics report."""

    def __init__(self, x: torch.Tensor, fixed: torch.Tensor, order: torch.Tensor,
                 shape: tuple[int, ...], levels: int) -> None:
        # a spare column after the last position, observed: where a window's entries past
        # the end, and a drawn value that an observed one keeps out, are written
        self.values = torch.nn.functional.pad(x, (0, 1))
        self.observed = torch.nn.functional.pad(fixed, (0, 1), value=True)
        self.x, self.fixed = self.values[:, :-1], self.observed[:, :-1]
        self.any_observed = bool(fixed.any())
        self.order, self.shape, self.levels = order, shape, levels
        self.prefix = torch.zeros(len(x), dtype=torch.long, device=x.device)
        self.cache: Any = None  # the target's window cache, when verification uses one
        self.checked: list[tuple[torch.Tensor, ...]] = []  # each call's, counted at the end
        self.target_calls = 0

    @classmethod
    def start(cls, target: CausalLogits, dataset: Dataset, n: int, generator: torch.Generator,
              condition: Condition | None) -> _State:
        x, fixed = observed_start("speculative sampling", dataset, n, condition,
                                  generator.device)
        order = torch.tensor(positions(target, dataset.dims), device=generator.device)
        levels = cast(int, dataset.num_levels)  # observed_start refused continuous data
        state = cls(x, fixed, order, tuple(dataset.shape), levels)
        # observed values before the first one drawn (a prompt) are the final prefix
        state.prefix = fixed[:, order].long().cumprod(1).sum(1)
        return state

    def active(self) -> torch.Tensor:
        return self.prefix < self.x.shape[1]

    def reach(self, k: int) -> None:
        """Where the entries of windows of up to k + 1 positions from any prefix are read
        (``reads``, in the order; past the end, the last position) and written
        (``writes``; past the end, the spare column)."""
        dims, device = self.x.shape[1], self.order.device
        self.steps = torch.arange(k + 1, device=device)
        index = torch.arange(dims + k + 1, device=device)
        self.reads = self.order[index.clamp(max=dims - 1)]
        self.writes = torch.nn.functional.pad(self.order, (0, k + 1), value=dims)

    def verify(self, target: CausalLogits, rows: torch.Tensor, window: Window,
               generator: torch.Generator, rule: type[Rule]) -> None:
        """One target call on `rows`: accept a prefix of the window, then one value from
        the residual (at the first rejection) or from the target (after all k). Batched
        tensor operations, nothing read back to the host."""
        n, k = window.values.shape
        every = n == len(self.x)  # every row (always at batch 1): no copies
        if self.cache is not None:  # every row, at its own positions (raster order)
            logits = self.cache.window(self.x, self.prefix, k + 1)
            logits = logits if every else logits[rows]
        else:
            logits = target.logits((self.x if every else self.x[rows]).reshape(n, *self.shape))
            logits = logits.gather(1, window.reads[..., None].expand(-1, -1, logits.shape[-1]))
        p = logits.softmax(-1)  # (n, k + 1, K)
        q = window.q.to(p.dtype)  # none after the k-th value: there the residual is p itself
        chosen = window.values[..., None]
        # in at least single precision: a half-precision uniform would bias the rule
        uniform = torch.rand(n, k + 1, generator=generator, device=p.device,
                             dtype=torch.promote_types(p.dtype, torch.float32))
        fixed = None if window.fixed is None else window.fixed[:, :k]
        accepted = rule.accept(p.gather(2, chosen)[..., 0], q.gather(2, chosen)[..., 0],
                               uniform[:, :k])
        if fixed is not None:
            accepted |= fixed
        run = accepted.cumprod(1).sum(1)  # accepted values before the first rejection
        self.count(accepted, run, fixed, len(self.x) if self.cache is not None else n)
        # at the first rejection the residual max(0, p - q), after all k p itself; p's share
        # at RESIDUAL_FLOOR changes a draw by at most that much in total variation, and
        # makes it p's should a residual round to nothing
        weights = rule.residual(p, q).add_(p, alpha=RESIDUAL_FLOOR)
        weights = weights.gather(1, run[:, None, None].expand(-1, -1, weights.shape[-1]))
        drawn = inverse_cdf(weights[:, 0].cumsum(-1), uniform[:, k])
        at = window.writes.gather(1, run[:, None])  # where the drawn value goes
        if window.fixed is not None:  # the spare column where the value is observed
            at.masked_fill_(window.fixed.gather(1, run[:, None]), self.x.shape[1])
        ends = (run + 1).add_(self.prefix if every else self.prefix[rows]).clamp_(
            max=self.x.shape[1])
        if every:
            self.values.scatter_(1, at, drawn[:, None])
            self.prefix = ends
        else:
            self.values[rows[:, None], at] = drawn[:, None]
            self.prefix[rows] = ends

    def count(self, accepted: torch.Tensor, run: torch.Tensor, fixed: torch.Tensor | None,
              computed: int) -> None:
        """Keep what a call checked (its acceptances, the accepted values before its first
        rejection, the values not drafted: observed or past the end; None: none) and count
        the rows the target `computed`."""
        self.checked.append((accepted, run,
                             torch.zeros_like(accepted) if fixed is None else fixed))
        self.target_calls += computed

    def acceptance(self) -> tuple[int, int]:
        """The drafted values the calls checked, those up to each first rejection, and the
        kept ones: their ratio is the per-value acceptance rate (alpha in Leviathan et al.).
        Counted once, at the end, over every call at once."""
        if not self.checked:
            return 0, 0
        width = max(accepted.shape[1] for accepted, _, _ in self.checked)
        accepted, fixed = (torch.cat([torch.nn.functional.pad(part[which], (
            0, width - part[which].shape[1]), value=which == 2) for part in self.checked])
            for which in (0, 2))
        run = torch.cat([part[1] for part in self.checked])
        checked = ~fixed & (torch.arange(width, device=run.device) <= run[:, None])
        return int(checked.sum()), int((accepted & checked).sum())

    def output(self, dataset: Dataset, condition: Condition | None, calls: int,
               budget: int | None, **diagnostics: float) -> SampleOutput:
        """The samples (in data units for a conditional task), with the acceptance of the
        drafts, the values finished per target call (MAT) and the most values one call
        verifies (``k``) as diagnostics."""
        if bool(self.active().any()):
            raise Incompatible(f"sampling did not finish in budget {budget} target calls; "
                               "give a larger budget (at most D are needed)")
        samples = self.x.reshape(len(self.x), *dataset.shape)
        if condition is not None:
            samples = dataset.continuous(samples)
        finished = float(self.x.numel() - self.fixed.sum().item())
        proposed, accepted = self.acceptance()
        if proposed:  # none when every value was observed
            diagnostics["acceptance"] = accepted / proposed
        return SampleOutput(samples=samples, nfe=calls, diagnostics={
            "mat": finished / max(self.target_calls, 1), **diagnostics})
