"""What the runner checks of a sampler's output before any task scores it.

Tasks see the cell's sampler through `CheckedSampler`: every `sample` and `nll`
result is checked against the contract (`arbench.plugin.contracts.SampleOutput`,
`LikelihoodOutput`), so a sampler that returns half the samples, the wrong shape,
NaN, levels out of range, a short NLL, more network calls than its budget or fewer
calls reported than arbench counted fails its cell with a message naming the sampler
and the violation, instead of being scored (or failing later inside a model with an
unrelated error).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import TYPE_CHECKING, Any

from arbench.errors import ContractViolation, Incompatible
from arbench.plugin.contracts import LikelihoodOutput, SampleOutput, Sampler
from arbench.run.cost import Call, CostMeter, head_of
from arbench.run.counting import per_example

if TYPE_CHECKING:
    import torch

    from arbench.plugin.conditions import Condition
    from arbench.plugin.contracts import Dataset, Model


class CheckedSampler(Sampler):
    """The sampler `name` as tasks see it: `sample`, `nll` and `reconstruct` are checked,
    counted and timed (`arbench.run.cost.CostMeter`, whose `record` the runner keeps); anything
    else (parameters) passes through to the sampler itself. The `diagnostics` of the last
    `sample` and `nll` result are kept for the record, a draft-and-verify sampler's figures
    pooled over the cell's `sample` calls (a task may draw in several). `warm` identifies
    the configuration (model, dataset) whose first call in this process is preceded by an
    untimed warm-up.
    `reference` is the task's reference sampler and the model it runs on, whose `sample`
    the meter times in turn with this one's on the same inputs (None: not timed)."""

    def __init__(self, sampler: Sampler, name: str, meter: CostMeter, warm: Any = None,
                 reference: tuple[Sampler, Model | None] | None = None
                 ) -> None:  # wraps: no Configurable init
        self._sampler = sampler
        self.reference = reference
        self.name = name
        self.claim = sampler.exactness  # what the wrapped sampler's class declares
        self.params = sampler.params
        self.meter = meter
        self.warm = warm
        self.diagnostics: dict[str, dict[str, Any]] = {}
        self._decoding = _Decoding()

    def sample(self, model: Model | None, dataset: Dataset, n: int, budget: int | None,
               generator: torch.Generator, condition: Condition | None = None) -> SampleOutput:
        def call(g: torch.Generator, k: int = n, given: Any = condition) -> SampleOutput:
            return self._sampler.sample(model, dataset, k, budget, g, condition=given)

        def head(k: int) -> Any:  # the warm-up draws from other random numbers
            return call(_other(generator), k, head_of(condition, n, k))

        reference = None
        if self.reference is not None:
            sampler, on = self.reference
            reference = _replay(generator, lambda g: sampler.sample(on, dataset, n, None, g,
                                                                    condition=condition))
        cut = condition is None or head_of(condition, n, 1) is not None
        drawn = self.meter.measure(model, ("sample", self.warm, type(condition), budget), Call(
            run=lambda: call(generator), replay=_replay(generator, call),
            head=head if cut else None, n=n, reference=reference))
        check_samples(self.name, drawn, n, dataset)
        check_nfe(self.name, drawn, budget)  # the meter made sure it is no fewer than counted
        self._keep_diagnostics("sample", drawn)
        self._count_decoding(n * dataset.dims - _observed(condition), n)
        return drawn

    def nll(self, model: Model | None, x: torch.Tensor, budget: int | None
            ) -> LikelihoodOutput:
        scored = self.meter.measure(model, ("nll", self.warm, budget), Call(
            run=lambda: self._sampler.nll(model, x, budget),
            replay=lambda: self._sampler.nll(model, x, budget),
            head=lambda k: self._sampler.nll(model, x[:k], budget), n=len(x)))
        check_likelihood(self.name, scored, len(x), discrete=not x.dtype.is_floating_point)
        check_nfe(self.name, scored, budget)
        self._keep_diagnostics("nll", scored)
        return scored

    def reconstruct(self, model: Model | None, x: torch.Tensor, budget: int | None,
                    generator: torch.Generator) -> Any:
        """The sampler's own `reconstruct` (`Reconstructs`), counted and timed."""
        method = getattr(self._sampler, "reconstruct", None)
        if method is None:
            raise Incompatible(f"sampler '{self.name}' cannot reconstruct from a truncated "
                               "code (it has no reconstruct method)")
        return self.meter.measure(model, ("reconstruct", self.warm, budget), Call(
            run=lambda: method(model, x, budget, generator),
            replay=_replay(generator, lambda g: method(model, x, budget, g)),
            head=lambda k: method(model, x[:k], budget, _other(generator)), n=len(x)))

    def _count_decoding(self, values: int, n: int) -> None:
        """A draft-and-verify sampler's figures from arbench's counts, over the cell's calls
        so far: ``draft_nfe`` (the drafts' calls per example), ``mat`` (values finished
        per target example-evaluation) and the reported ``acceptance`` averaged by the
        calls' examples; a call's reported draft count that differs from its own is a
        violation, and a reported acceptance must be a share."""
        reported = self.diagnostics.get("sample", {})
        counted = self.meter.draft_nfe
        if "draft_nfe" in reported and reported["draft_nfe"] != counted:
            raise ContractViolation(
                f"sampler '{self.name}' reported draft_nfe={reported['draft_nfe']!r} but its "
                f"drafts made {counted} calls per example (counted by arbench through each "
                "draft handed to arbench.draft_model); report the draft calls it makes, or none")
        acceptance = reported.get("acceptance")
        if acceptance is not None:
            if not (isinstance(acceptance, numbers.Real) and 0 <= float(acceptance) <= 1):
                raise ContractViolation(
                    f"sampler '{self.name}' reported acceptance={acceptance!r}; an acceptance "
                    "rate is a share of the drafted values, 0..1")
            _check_acceptance(self.name, float(acceptance), reported.get("k"), values /
                              self.meter.evaluations if self.meter.evaluations else 0)
        pool = self._decoding.add(values, n, self.meter, acceptance)
        if pool.drafts or pool.weighed or reported.keys() & {"draft_nfe", "mat"}:
            self.diagnostics["sample"] = {**reported, **pool.figures()}

    def _keep_diagnostics(self, method: str, output: Any) -> None:
        diagnostics = getattr(output, "diagnostics", None) or {}
        check_diagnostics(self.name, diagnostics)
        if diagnostics:
            self.diagnostics[method] = dict(diagnostics)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._sampler, attribute)


@dataclasses.dataclass
class _Decoding:
    """A cell's sample calls so far: values finished, the target's and the drafts'
    example-evaluations, examples, and the reported acceptance summed by examples and
    call by call (with each call's examples: an interval over calls)."""

    values: int = 0
    evaluations: float = 0.0
    drafts: float = 0.0
    examples: int = 0
    accepted: float = 0.0
    weighed: int = 0  # the examples of the calls that reported an acceptance
    calls: list[list[float]] = dataclasses.field(default_factory=list)

    def add(self, values: int, n: int, meter: CostMeter, acceptance: Any) -> _Decoding:
        self.values, self.examples = self.values + values, self.examples + n
        self.evaluations += meter.evaluations
        self.drafts += meter.drafts
        if acceptance is not None:
            self.accepted, self.weighed = self.accepted + float(acceptance) * n, self.weighed + n
            self.calls.append([float(acceptance), n])
        return self

    def figures(self) -> dict[str, Any]:
        """``draft_nfe``, ``mat`` and, where reported, ``acceptance`` of the calls so far
        (with ``acceptance_calls``, each call's and its examples, when there are several)."""
        found: dict[str, Any] = {
            "draft_nfe": per_example(self.drafts, self.examples),
            "mat": self.values / self.evaluations if self.evaluations else None}
        if self.weighed:
            found["acceptance"] = self.accepted / self.weighed
        if len(self.calls) > 1:
            found["acceptance_calls"] = [list(call) for call in self.calls]
        return found


def _check_acceptance(name: str, acceptance: float, k: Any, mat: float) -> None:
    """A call that verifies at most `k` drafted values finishes the ones it keeps and one
    more: values per target call (arbench's MAT) are at most 1 + k * acceptance."""
    if not isinstance(k, numbers.Integral) or k < 1:
        raise ContractViolation(
            f"sampler '{name}' reported acceptance without k (the most drafted values one "
            f"target call verifies, an integer >= 1, got {k!r}); report both in diagnostics")
    if mat > 1 + int(k) * acceptance + 1e-9:
        raise ContractViolation(
            f"sampler '{name}' reported acceptance={acceptance:.4g} with k={k}, but finished "
            f"{mat:.4g} values per target call (counted by arbench); a call keeps at most k * "
            f"acceptance drafted values on average and draws one more: at most "
            f"{1 + int(k) * acceptance:.4g}")


def _observed(condition: Any) -> int:
    """How many values a condition fixes (an `Observed` mask's count; none otherwise)."""
    mask = getattr(condition, "mask", None)
    return int(mask.sum()) if mask is not None and hasattr(mask, "sum") else 0


WARM_UP_SEED_OFFSET = 0x5EED


def _other(generator: torch.Generator) -> torch.Generator:
    """A generator of other random numbers than `generator`'s, which stays untouched: what
    a warm-up draws could not be the scored call's samples."""
    import torch

    return torch.Generator(device=generator.device).manual_seed(
        generator.initial_seed() + WARM_UP_SEED_OFFSET)


def _copy(generator: torch.Generator) -> torch.Generator:
    """A generator in the same state as `generator`, which stays untouched."""
    import torch

    twin = torch.Generator(device=generator.device)
    twin.set_state(generator.get_state())
    return twin


def _replay(generator: torch.Generator, call: Any) -> Any:
    """The call again, as often as asked, from `generator`'s state now (before the first
    call runs)."""
    snapshot = _copy(generator)  # never drawn from
    return lambda: call(_copy(snapshot))


def check_samples(name: str, drawn: Any, n: int, dataset: Any) -> None:
    """`n` samples of the dataset's example shape: integer levels in range, or finite
    continuous values (a conditional estimate, a denoiser's output)."""
    import torch

    samples = getattr(drawn, "samples", None)
    if not isinstance(samples, torch.Tensor):
        raise ContractViolation(f"sampler '{name}' returned {type(drawn).__name__} without a "
                                "samples tensor; return SampleOutput(samples, nfe)")
    if samples.shape[:1] != (n,):
        count = samples.shape[0] if samples.dim() else "no"
        raise ContractViolation(f"sampler '{name}' returned {count} samples, {n} were asked for")
    if tuple(samples.shape[1:]) != tuple(dataset.shape):
        raise ContractViolation(
            f"sampler '{name}' returned samples of shape {tuple(samples.shape[1:])}; dataset "
            f"'{dataset.name}' examples have shape {tuple(dataset.shape)}")
    if samples.device.type == "meta":
        raise ContractViolation(f"sampler '{name}' returned samples on the meta device (no "
                                "values); return real tensors on the cell's device")
    if samples.dtype.is_floating_point and samples.dtype != torch.float32:
        raise ContractViolation(f"sampler '{name}' returned {samples.dtype} samples; return "
                                "float32 values (samples.float()) or integer levels")
    if samples.dtype.is_floating_point:
        if not bool(torch.isfinite(samples).all()):
            raise ContractViolation(f"sampler '{name}' returned NaN or infinite samples")
    elif samples.dtype == torch.bool or dataset.num_levels is None:
        raise ContractViolation(
            f"sampler '{name}' returned {samples.dtype} samples; dataset '{dataset.name}' takes "
            + ("continuous values" if dataset.num_levels is None else
               "integer levels or continuous values"))
    elif samples.numel():
        low, high = int(samples.min()), int(samples.max())
        if low < 0 or high >= dataset.num_levels:
            raise ContractViolation(
                f"sampler '{name}' returned levels {low}..{high}; dataset '{dataset.name}' "
                f"has levels 0..{dataset.num_levels - 1}")


NLL_SLACK_NATS = 1e-4  # float error allowed below 0 on discrete data


def check_likelihood(name: str, scored: Any, n: int, discrete: bool = False) -> None:
    """One NLL in nats per scored example: a number, or +inf for an example of zero
    probability (a point off a checkerboard's support); never NaN or -inf, and on discrete
    data (integer levels) never below 0: no probability exceeds 1."""
    import torch

    if not (isinstance(scored, LikelihoodOutput) and isinstance(scored.nll_nats, torch.Tensor)):
        raise ContractViolation(f"sampler '{name}' returned {type(scored).__name__} without an "
                                "nll_nats tensor; return LikelihoodOutput(nll_nats, nfe)")
    nll = scored.nll_nats
    if tuple(nll.shape) != (n,):
        raise ContractViolation(f"sampler '{name}' returned an NLL of shape {tuple(nll.shape)} "
                                f"for {n} examples; give one value per example, ({n},)")
    if bool(torch.isnan(nll).any()) or bool((nll == -math.inf).any()):
        raise ContractViolation(f"sampler '{name}' returned a NaN or -inf NLL")
    if discrete and nll.numel() and float(nll.detach().min()) < -NLL_SLACK_NATS:
        raise ContractViolation(
            f"sampler '{name}' returned an NLL of {float(nll.detach().min()):.4g} nats on discrete "
            "data: a probability above 1; a discrete likelihood's NLL is >= 0")


def check_nfe(name: str, output: Any, budget: int | None) -> None:
    """The network calls used: a whole number >= 0, within the budget when there is one."""
    nfe = getattr(output, "nfe", None)
    if not isinstance(nfe, numbers.Integral) or isinstance(nfe, bool) or int(nfe) < 0:
        raise ContractViolation(f"sampler '{name}' reported nfe={nfe!r}; report the network "
                                "calls it used as a whole number >= 0")
    if budget is not None and int(nfe) > budget:
        raise ContractViolation(f"sampler '{name}' used {nfe} network calls, more than its "
                                f"budget of {budget}; spend at most the budget or raise "
                                "Incompatible")


MAX_DIAGNOSTICS_CHARS = 20_000  # records stay small: a few numbers or short lists


def check_diagnostics(name: str, diagnostics: Any) -> None:
    """A small dict with string keys whose values JSON can write."""
    import json

    if not isinstance(diagnostics, dict) or not all(isinstance(k, str) for k in diagnostics):
        raise ContractViolation(f"sampler '{name}' returned diagnostics of type "
                                f"{type(diagnostics).__name__}; give a dict with string keys")
    try:
        size = len(json.dumps(diagnostics, allow_nan=True))
    except (TypeError, ValueError) as error:
        raise ContractViolation(f"sampler '{name}' returned diagnostics JSON cannot write "
                                f"({error}); give numbers, strings or lists of them "
                                "(tensor.tolist())") from None
    if size > MAX_DIAGNOSTICS_CHARS:
        raise ContractViolation(f"sampler '{name}' returned {size} characters of diagnostics; "
                                f"keep them under {MAX_DIAGNOSTICS_CHARS} (summaries, not "
                                "per-value traces)")
