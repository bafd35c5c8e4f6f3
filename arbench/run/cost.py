"""What a sampler's calls cost, measured by arbench: network calls, compute and seconds.

`CostMeter` runs each of a cell's sampler calls (`sample`, `nll`, `reconstruct`)
and keeps, for the record:

- ``nfe``: the target calls per example that `arbench.run.counting` counted (the largest
  over the cell's calls), beside ``nfe_reported``, the sampler's own figure; a sampler
  that reports fewer calls than it made is a `ContractViolation`. ``positions``: the
  target positions evaluated per example, the compute axis beside it;
- ``flops``: the floating-point operations per example of the scored call, counted at
  the ATen level (`arbench.run.flops`); compute that the counted calls do not account
  for is a `ContractViolation`;
- ``counted_call_s``: the seconds of the scored calls, counted and metered: not a
  timing (the FLOP count's overhead is in it), but beside the timings it says what
  metering costs;
- ``sampler_time_s``: the seconds of the sampler's calls alone (no loading, no
  metrics), CUDA-synchronised, after one untimed warm-up call on a small batch per
  process and configuration (one-off costs such as kernel selection and lazy
  allocation land there); ``sampler_timings_s`` the same total for each of
  ``repeats`` timings (rounds); ``reference_timings_s`` the task's reference sampler's
  (cached ancestral sampling, a baseline) on the same inputs and random state, timed in
  turn with them call by call (the sampler first in even rounds, the reference in odd
  ones), so that the speed-up is a paired ratio per round that a noisy machine hits
  alike (`arbench.results.speed`);
- ``call_steps`` and ``draft_steps``: where a sampler's time goes, at batch 1 on the
  CPU. The timed replays clock the outermost network calls of the target and of the
  drafts (`arbench.run.counting.Clock`); a target call's seconds (v) and a drafted
  value's (c) are given in the reference's steps, its seconds per target call (for
  cached ancestral sampling, its whole time per value). With a draft's acceptance a,
  (1 - a^(k+1)) / ((1 - a)(k c + v)) is the speed-up its calls alone allow (Leviathan
  et al., 2023): the cost table sets the measured one against it. None at larger
  batches (rows finish at different rounds) and on a GPU (a call's seconds there are
  its launch's, without a synchronisation that would slow the timed call).

The scored call, whose output the record's samples and metrics are, is counted and its
FLOPs metered; it is not timed, since the FLOP count slows small operators. Each timing
replays it from the same random state with nothing metered and discards the output; a
call whose replay took over `REPEAT_BELOW_S` is timed once (its relative noise is
small, and repeating it would multiply the cell's cost): seeds then give the interval.
With ``repeats`` 0 nothing is timed. The warm-up draws from other random numbers and is
counted too: when it computed more than `WARM_UP_SLACK` times what the scored call
computed for as many examples, it is charged to the scored call, so samples drawn there
and served later are not free (a sampler whose number of calls is random, at batch 1,
is not charged its warm-up's luck).
"""

from __future__ import annotations

import dataclasses
import numbers
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, Generic, TypeVar

from arbench.errors import ContractViolation, Incompatible
from arbench.run.counting import DRAFTS, CallCounter, Clock, counter_of, per_example

REPEAT_BELOW_S = 10.0
WARM_UP_EXAMPLES = 2
# A warm-up that computed more than this many times what the scored call computed for as
# many examples drew samples for later: the scored call is charged what it computed. A
# sampler whose calls are random in number (speculative sampling) stays within it.
WARM_UP_SLACK = 2.0


T = TypeVar("T")


@dataclasses.dataclass
class Call(Generic[T]):
    """One sampler call, as the meter replays it: on `n` examples, or on the first `k`."""

    run: Callable[[], T]  # the call itself (uses the cell's generator)
    replay: Callable[[], Any]  # the same call from the same generator state
    head: Callable[[int], Any] | None  # the call on the first k examples (None: cannot)
    n: int
    reference: Callable[[], Any] | None = None  # the task's reference sampler on its inputs


@dataclasses.dataclass
class Counts:
    """What one sampler call computed, counted by arbench: the target's example-evaluations
    and positions, the drafts' example-evaluations, and FLOPs (all over its n examples)."""

    evaluations: float
    positions: float
    drafts: float
    flops: float

    def at_least(self, other: Counts) -> Counts:
        """Each count the larger of the two: a call charged what another computed for it."""
        return Counts(*(max(getattr(self, f.name), getattr(other, f.name))
                        for f in dataclasses.fields(self)))


class CostMeter:
    """Counts and times one cell's sampler calls (see the module docstring)."""

    def __init__(self, sampler_name: str, device: str, warmed: set[Any], repeats: int = 3
                 ) -> None:
        self.sampler_name, self.device, self.warmed, self.repeats = (
            sampler_name, device, warmed, repeats)
        self.nfe = 0
        self.nfe_reported = 0
        # the last call's (whose diagnostics the record keeps): the target's
        # example-evaluations, and the drafts' calls per example (`counting.draft_model`)
        self.evaluations, self.draft_nfe = 0.0, 0
        self.drafts = 0.0  # the last call's draft example-evaluations, over its examples
        self.positions = 0.0  # target positions evaluated per example (the largest call's)
        self.flops = 0.0  # FLOPs per example counted at the ATen level (the largest call's)
        self.counted_call_s = 0.0  # the scored calls' seconds, counted and metered (no timing)
        self.examples = 0
        self.batch_one = True  # every call on one example
        # the timed replays' clocked calls: the target's and drafts' in the sampler's, the
        # target's in the reference's
        self.clocks = {part: Clock() for part in ("target", "draft", "reference")}
        self.timings: list[float] = []  # per repeat, summed over the cell's calls
        # the reference sampler's, timed in turn with them; None once a call had none
        self.reference_timings: list[float] | None = []

    def measure(self, model: Any, warm_key: Any, call: Call[T]) -> T:
        """Run `call` counted (warming up first if this configuration has not run in this
        process), then time its replays; its output."""
        warm = None
        head = call.head
        if warm_key not in self.warmed and head is not None:
            with _restored(_rng_state()):
                warm = self._counted(model, lambda: head(min(WARM_UP_EXAMPLES, call.n)))[1]
            self.warmed.add(warm_key)
        before = _rng_state()
        seconds, (output, counts) = self._timed(lambda: self._counted(model, call.run))
        self.counted_call_s += seconds
        if warm is not None and warm.evaluations > WARM_UP_SLACK * counts.evaluations * min(
                WARM_UP_EXAMPLES, call.n) / call.n:  # it drew more than its own examples
            counts = counts.at_least(warm)
        counted = per_example(counts.evaluations, call.n)
        reported = getattr(output, "nfe", None)
        if isinstance(reported, numbers.Integral) and int(reported) < counted:
            raise ContractViolation(
                f"sampler '{self.sampler_name}' reported nfe={reported} but made {counted} "
                "network calls per example (counted by arbench; see arbench.run.counting for "
                "what counts); report the calls it makes")
        self.evaluations, self.draft_nfe = (counts.evaluations,
                                            per_example(counts.drafts, call.n))
        self.drafts = counts.drafts
        self.nfe = max(self.nfe, counted)
        self.positions = max(self.positions, counts.positions / call.n)
        self.flops = max(self.flops, counts.flops / call.n)
        if isinstance(reported, numbers.Integral):
            self.nfe_reported = max(self.nfe_reported, int(reported))
        self.examples += call.n
        self.batch_one &= call.n == 1
        self._add_timings(model, call, before, warm_key)
        return output

    def _counted(self, model: Any, run: Callable[[], T]) -> tuple[T, Counts]:
        """Run `run` with the model's and the drafts' calls counted and its FLOPs metered; a
        sampler whose compute its counted calls do not account for violates the contract."""
        from arbench.run.flops import FlopMeter, unaccounted

        counter = counter_of(model) if model is not None else CallCounter()
        flops = FlopMeter()
        with counter.counting(), DRAFTS.counting(), flops:
            output = run()
        hidden = unaccounted(flops)
        if hidden is not None:
            raise ContractViolation(
                f"sampler '{self.sampler_name}': {hidden}; call the model through its "
                "methods (model.logits(x), its cache, ...), the model handed to this call "
                "alone, and hand drafts to arbench.draft_model")
        return output, Counts(counter.evaluations, counter.positions, DRAFTS.evaluations,
                              flops.total)

    def _add_timings(self, model: Any, call: Call[Any], before: tuple[Any, ...],
                     warm_key: Any) -> None:
        """Time `repeats` replays of the call from the scored call's random state (the FLOP
        count slows the scored call, so it is not timed), each in turn with a replay of the
        reference sampler on the same inputs where there is one (the sampler first in even
        rounds, the reference first in odd ones); after a replay that took
        `REPEAT_BELOW_S` or more, no other round."""
        reference = self._reference(call, before, warm_key)
        if reference is None:
            self.reference_timings = None
        times: list[float] = []
        paired: list[float] = []
        while len(times) < self.repeats and not (
                times and max(times[-1], paired[-1] if paired else 0) >= REPEAT_BELOW_S):
            turns = [(times, call.replay, False)] + (
                [(paired, reference, True)] if reference else [])
            for found, replay, referenced in turns if len(times) % 2 == 0 else turns[::-1]:
                with _restored(before), self._clocked(model, referenced):
                    found.append(self._timed(replay)[0])
        self.timings = _summed(self.timings, times)
        if self.reference_timings is not None:
            self.reference_timings = _summed(self.reference_timings, paired)

    def _reference(self, call: Call[Any], before: tuple[Any, ...], warm_key: Any
                   ) -> Callable[[], Any] | None:
        """The reference's replay of `call`, warmed up once per configuration in this
        process; None when there is none, nothing is timed, or it cannot serve the call."""
        if call.reference is None or not self.repeats:
            return None
        if ("reference", warm_key) not in self.warmed:
            try:
                with _restored(before):
                    call.reference()
            except Incompatible:
                return None
            self.warmed.add(("reference", warm_key))
        return call.reference

    @contextmanager
    def _clocked(self, model: Any, reference: bool) -> Iterator[None]:
        """Clock the target's calls (and the drafts', in the sampler's replay) on the CPU."""
        if model is None or self.device.startswith("cuda"):
            yield
            return
        target = self.clocks["reference" if reference else "target"]
        drafts = nullcontext() if reference else DRAFTS.clocking(self.clocks["draft"])
        with counter_of(model).clocking(target), drafts:
            yield

    def _steps(self) -> dict[str, float | None]:
        """``call_steps`` and ``draft_steps`` (see the module docstring), or None."""
        target, draft, reference = self.clocks.values()
        if not (self.batch_one and target.evaluations and reference.evaluations
                and self.reference_timings):
            return {"call_steps": None, "draft_steps": None}
        step = sum(self.reference_timings) / reference.evaluations
        return {"call_steps": target.seconds / target.evaluations / step,
                "draft_steps": draft.seconds / draft.evaluations / step
                if draft.evaluations else None}

    def _timed(self, run: Callable[[], T]) -> tuple[float, T]:
        self._synchronize()
        started = time.perf_counter()
        output = run()
        self._synchronize()
        return time.perf_counter() - started, output

    def _synchronize(self) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)

    def record(self) -> dict[str, Any]:
        """The record's cost fields (sampler time: the mean of the timings)."""
        seconds = sum(self.timings) / len(self.timings) if self.timings else None
        return {"nfe": self.nfe, "nfe_reported": self.nfe_reported,
                "positions": self.positions, "flops": self.flops,
                "counted_call_s": self.counted_call_s,
                "sampler_time_s": seconds, "sampler_timings_s": list(self.timings),
                "reference_timings_s": list(self.reference_timings)
                if self.timings and self.reference_timings else None,
                "examples_per_s": self.examples / seconds if seconds else None,
                **(self._steps() if self.timings else {})}


def _summed(totals: list[float], times: list[float]) -> list[float]:
    """Each round's seconds added over a cell's calls."""
    return times if not totals else [t + s for t, s in zip(totals, times)]  # noqa: B905


def head_of(value: Any, n: int, k: int) -> Any:
    """The first `k` of `n` examples of a tensor or of a dataclass of tensors (a
    condition); None when `value` has no batch axis of size `n` to cut."""
    import torch

    if isinstance(value, torch.Tensor):
        return value[:k] if value.dim() and value.shape[0] == n else None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: getattr(value, f.name)[:k] for f in dataclasses.fields(value)
                   if isinstance(getattr(value, f.name), torch.Tensor)
                   and getattr(value, f.name).dim() and getattr(value, f.name).shape[0] == n}
        return dataclasses.replace(value, **changes) if changes else None
    return None


def _rng_state() -> tuple[Any, ...]:
    import numpy as np
    import torch

    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    return torch.get_rng_state(), cuda, np.random.get_state(), random.getstate()


@contextmanager
def _restored(state: tuple[Any, ...]) -> Iterator[None]:
    """Run the block from the global random `state`, then put back the state before it:
    warm-ups and replays leave every global stream as they found it."""
    import numpy as np
    import torch

    now = _rng_state()

    def put(saved: tuple[Any, ...]) -> None:
        torch.set_rng_state(saved[0])
        if saved[1] is not None:
            torch.cuda.set_rng_state_all(saved[1])
        np.random.set_state(saved[2])
        random.setstate(saved[3])

    put(state)
    try:
        yield
    finally:
        put(now)
