"""What a sampler's calls cost, measured by arbench: network calls and seconds.

`CostMeter` runs each of a cell's sampler calls (`sample`, `nll`, `reconstruct`)
and keeps, for the record:

- ``nfe``: the network evaluations per example that `arbench.run.counting` counted
  (the largest over the cell's calls), beside ``nfe_reported``, the sampler's own
  figure; a sampler that reports fewer calls than it made is a `ContractViolation`;
- ``sampler_time_s``: the seconds of the sampler's calls alone (no loading, no
  metrics), CUDA-synchronised, after one untimed warm-up call on a small batch per
  process and configuration (one-off costs such as kernel selection and lazy
  allocation land there); ``sampler_timings_s`` the same total for each of
  ``repeats`` timings, whose spread gives the speed-ups their intervals. A repeat
  replays the call from the same random state and discards its output, so the
  record's samples and metrics are the first call's; a call that took over
  `REPEAT_BELOW_S` is timed once (its relative noise is small, and repeating it
  would multiply the cell's cost): seeds then give the interval.
"""

from __future__ import annotations

import dataclasses
import numbers
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from arbench.errors import ContractViolation
from arbench.run.counting import DRAFTS, counter_of

REPEAT_BELOW_S = 10.0
WARM_UP_EXAMPLES = 2


T = TypeVar("T")


@dataclasses.dataclass
class Call(Generic[T]):
    """One sampler call, as the meter replays it: on `n` examples, or on the first `k`."""

    run: Callable[[], T]  # the call itself (uses the cell's generator)
    replay: Callable[[], Any]  # the same call from the same generator state
    head: Callable[[int], Any] | None  # the call on the first k examples (None: cannot)
    n: int


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
        self.examples = 0
        self.timings: list[float] = []  # per repeat, summed over the cell's calls

    def measure(self, model: Any, warm_key: Any, call: Call[T]) -> T:
        """Run `call` (warming up first if this configuration has not run in this process),
        count its network evaluations and time it; its output."""
        if warm_key not in self.warmed and call.head is not None:
            with _restored(_rng_state()):
                call.head(min(WARM_UP_EXAMPLES, call.n))
            self.warmed.add(warm_key)
        before = _rng_state()
        counter = counter_of(model) if model is not None else None
        with _counting(counter), DRAFTS.counting():
            seconds, output = self._timed(call.run)
        counted = counter.per_example(call.n) if counter is not None else 0
        self.evaluations = counter.evaluations if counter is not None else 0.0
        self.draft_nfe = DRAFTS.per_example(call.n)
        times = [seconds]
        if seconds < REPEAT_BELOW_S:
            for _ in range(self.repeats - 1):
                with _restored(before):
                    times.append(self._timed(call.replay)[0])
        reported = getattr(output, "nfe", None)
        if isinstance(reported, numbers.Integral) and int(reported) < counted:
            raise ContractViolation(
                f"sampler '{self.sampler_name}' reported nfe={reported} but made {counted} "
                "network calls per example (counted by arbench; see arbench.run.counting for "
                "what counts); report the calls it makes")
        self.nfe = max(self.nfe, counted)
        if isinstance(reported, numbers.Integral):
            self.nfe_reported = max(self.nfe_reported, int(reported))
        self.examples += call.n
        if not self.timings:
            self.timings = times
        else:
            self.timings = [t + s for t, s in zip(self.timings, times)]  # noqa: B905
        return output

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
        seconds = sum(self.timings) / len(self.timings) if self.timings else 0.0
        return {"nfe": self.nfe, "nfe_reported": self.nfe_reported,
                "sampler_time_s": seconds, "sampler_timings_s": list(self.timings),
                "examples_per_s": self.examples / seconds if seconds > 0 else None}


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


@contextmanager
def _counting(counter: Any) -> Iterator[None]:
    if counter is None:
        yield
        return
    with counter.counting():
        yield


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
