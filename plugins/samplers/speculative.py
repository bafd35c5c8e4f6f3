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
``draft_order``) or any registered model with causal logits of the same data
(``draft=pixelcnn``, ``draft_checkpoint=PATH``), behind one method, ``propose``
(`arbench_plugins.samplers.drafts`): table lookups for the n-gram, one cached step per
value for a model whose cache has a window. Each target call is one network call
of the NFE axis; the draft's calls are counted by arbench through the draft and
recorded in the diagnostics with the acceptance rate and the mean values per target
call (Spec-Bench's mean accepted tokens, MAT). A target whose cache has a ``window``
(the transformer's key/value cache) verifies through it: k + 1 positions per row per
call instead of all D, every row of the batch at its own prefix (the call counts each
row). Observed positions (super-resolution, inpainting) are fixed and always accepted:
the model's conditionals of the others given them, as Jacobi decoding samples. A round
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
from arbench_plugins.samplers.ancestral import Ancestral, positions
from arbench_plugins.samplers.drafts import MAX_NGRAM_ORDER, inverse_cdf, load_draft
from arbench_plugins.samplers.jacobi import observed_start

RESIDUAL_FLOOR = 1e-20  # of p in a residual draw (`_State.verify`)


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
    """One step's k proposals for the active rows: flat positions, which are not drafted
    (observed, or past the last position), the proposed values and the draft's
    probabilities ``(n, k, K)``."""

    flat: torch.Tensor
    fixed: torch.Tensor
    values: torch.Tensor
    q: torch.Tensor


class Speculative(Sampler):
    """Draft k values, verify them in one target call: the model's distribution exactly."""

    exactness = "distribution"
    rule: ClassVar[type[Rule]] = Rule
    class Params(Sampler.Params):
        k: int = Param(4, "values the draft proposes per target call (at most the positions "
                          "left are proposed)", ge=1, le=MAX_POSITIONS)
        draft: str = Param("ngram", "the draft: ngram, or a registered model with causal "
                                "logits of the same data")
        draft_order: int = Param(3, "the n-gram draft's order (values of context + 1), "
                                    "interpolated with every shorter context (Witten-Bell)",
                                 ge=1, le=MAX_NGRAM_ORDER)
        draft_checkpoint: str | None = Param(None, "the draft model's checkpoint")

    params: Params

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        given = self.params.model_fields_set
        if self.params.draft == "ngram" and self.params.draft_checkpoint is not None:
            raise ParameterError("speculative.draft_checkpoint is for a model draft; the "
                                 "n-gram draft (draft=ngram, the default) is fitted here: "
                                 "give speculative.draft=MODEL too, or drop the checkpoint")
        if self.params.draft != "ngram" and "draft_order" in given:
            raise ParameterError(f"speculative.draft_order is the n-gram draft's; the draft "
                                 f"{self.params.draft!r} is a model: drop draft_order")
        self._drafts: dict[tuple[str, ...], Any] = {}

    def models_used(self) -> dict[str, dict[str, Any]]:
        """A model draft with its checkpoint (the n-gram is fitted here: no model)."""
        if self.params.draft == "ngram":
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
        every = torch.arange(n, device=generator.device)
        calls = 0
        while calls < (budget or dataset.dims) and bool(state.active().any()):
            # a cached draft, like the target's cache, computes every row at its position
            rows = every if draft.cached else state.active().nonzero().squeeze(1)
            window = self._propose(draft, state, rows, generator)
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
            params = ({"order": self.params.draft_order} if name == "ngram" else
                      self.models_used()[name])
            self._drafts[key] = load_draft(name, dataset, device, order, params,
                                           "speculative.draft_checkpoint")
        return self._drafts[key]

    def _propose(self, draft: Any, state: _State, rows: torch.Tensor,
                 generator: torch.Generator) -> Window:
        """The draft's k proposals (no more than the positions left) for every active row,
        written into the state's values."""
        dims = state.x.shape[1]
        k = min(self.params.k, dims - int(state.prefix[rows].min()))
        index = state.prefix[rows, None] + torch.arange(k, device=rows.device)
        valid = index < dims
        flat = state.order[index.clamp(max=dims - 1)]
        fixed = state.fixed[rows[:, None], flat] | ~valid
        uniforms = torch.rand(len(rows), k, generator=generator, device=rows.device,
                              dtype=torch.float64)
        every = len(rows) == len(state.x)  # always at batch 1: no copies
        x = state.x if every else state.x[rows]
        values, q = draft.propose(x, flat, fixed, uniforms)
        # past the last position a window repeats it: those entries write to a spare column
        spare = torch.nn.functional.pad(x, (0, 1))
        spare.scatter_(1, flat.where(valid, dims), values)
        if every:
            state.x.copy_(spare[:, :dims])
        else:
            state.x[rows] = spare[:, :dims]
        return Window(flat, fixed, values, q)


def _raster(order: torch.Tensor) -> bool:
    return torch.equal(order, torch.arange(len(order), device=order.device))


def _window_cache(target: CausalLogits, order: torch.Tensor, n: int) -> Any:
    """The target's cache with a ``window`` (`arbench.plugin.capabilities.InOrder.incremental`)
    when it has one and draws in raster order: verification then computes k + 1
    positions per row instead of all D. None: a full call per verification."""
    incremental = getattr(target, "incremental", None)
    cache = incremental(n) if incremental is not None and _raster(order) else None
    return cache if cache is not None and hasattr(cache, "window") else None


class _State:
    """The batch being sampled: values (flat), each row's final prefix in the model's
    order, the observed positions, and the counts the diagnostics report."""

    def __init__(self, x: torch.Tensor, fixed: torch.Tensor, order: torch.Tensor,
                 shape: tuple[int, ...], levels: int) -> None:
        self.x, self.fixed, self.order, self.shape, self.levels = x, fixed, order, shape, levels
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
        return cls(x, fixed, order, tuple(dataset.shape), levels)

    def active(self) -> torch.Tensor:
        return self.prefix < self.x.shape[1]

    def verify(self, target: CausalLogits, rows: torch.Tensor, window: Window,
               generator: torch.Generator, rule: type[Rule]) -> None:
        """One target call on `rows`: accept a prefix of the window, then one value from
        the residual (at the first rejection) or from the target (after all k). Batched
        tensor operations in the target's dtype, nothing read back to the host."""
        n, k = window.flat.shape
        dims = self.x.shape[1]
        every = n == len(self.x)  # every row (always at batch 1): no copies
        arange = rows if every else torch.arange(n, device=rows.device)
        x = self.x if every else self.x[rows]
        prefix = self.prefix if every else self.prefix[rows]
        if self.cache is not None:  # every row, at its own positions (raster order)
            logits = self.cache.window(self.x, self.prefix, k + 1)
            logits = logits if every else logits[rows]
        else:
            after = self.order[(prefix + k).clamp(max=dims - 1)][:, None]
            logits = target.logits(x.view(n, *self.shape))[
                arange[:, None], torch.cat([window.flat, after], 1)]
        p = logits.softmax(-1)  # (n, k + 1, K)
        # the draft's q, with none after the k-th value: there the residual is p itself
        q = torch.nn.functional.pad(window.q.to(p.dtype), (0, 0, 0, 1))
        chosen = window.values[..., None]
        uniform = torch.rand(n, k + 1, generator=generator, device=x.device,
                             dtype=torch.float64)
        accepted = rule.accept(p.gather(2, chosen)[..., 0], q.gather(2, chosen)[..., 0],
                               uniform[:, :k]) | window.fixed
        run = accepted.cumprod(1).sum(1)  # accepted values before the first rejection
        self.count(accepted, run, window.fixed, len(self.x) if self.cache is not None else n)
        # at the first rejection the residual max(0, p - q), after all k p itself; p's share
        # at RESIDUAL_FLOOR changes a draw by at most that much in total variation, and
        # makes it p's should a residual round to nothing
        at = p[arange, run]
        weights = rule.residual(at, q[arange, run]).add(at, alpha=RESIDUAL_FLOOR)
        drawn = inverse_cdf(weights.cumsum(-1), uniform[:, k])
        last = prefix + run  # where the drawn value goes in the order: in the window or after
        position = self.order[last.clamp(max=dims - 1)]
        keep = (last >= dims) | self.fixed[rows, position]
        x[arange, position] = torch.where(keep, x[arange, position], drawn)
        ends = last.add_(1).clamp_(max=dims)
        if every:
            self.prefix.copy_(ends)
        else:
            self.x[rows], self.prefix[rows] = x, ends

    def count(self, accepted: torch.Tensor, run: torch.Tensor, fixed: torch.Tensor,
              computed: int) -> None:
        """Keep what a call checked (its acceptances, the accepted values before its first
        rejection, the values not drafted: observed or past the end) and count the rows
        the target `computed`."""
        self.checked.append((accepted, run, fixed))
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
        samples = self.x.view(len(self.x), *dataset.shape)
        if condition is not None:
            samples = dataset.continuous(samples)
        finished = float(self.x.numel() - self.fixed.sum().item())
        proposed, accepted = self.acceptance()
        if proposed:  # none when every value was observed
            diagnostics["acceptance"] = accepted / proposed
        return SampleOutput(samples=samples, nfe=calls, diagnostics={
            "mat": finished / max(self.target_calls, 1), **diagnostics})
