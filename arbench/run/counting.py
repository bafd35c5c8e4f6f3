"""Network calls counted by arbench, not taken from a sampler's word.

While a sampler runs, the model it was handed counts its own network evaluations
(`instrument`, installed once per loaded model). What each method costs is declared
where the method is (`arbench.plugin.calls`: the capabilities' Protocols mark theirs, a
model or a draft may mark its own). The convention, per example:

- a batched call of a network method is 1 (``logits``, ``log_prob``, ``sample_value``,
  ``smoothed_log_prob``, ``step_log_probs``, ``noisy_log_prob``, ``clean_log_prob``, a
  draft's ``propose``), as is one step of an incremental cache
  (``model.incremental(n).logits(previous)``, or its ``window(x, starts, width)``: one
  call of every row at a few positions each);
- a method that runs the network once per position or per code counts that many
  (``prior_sample(n, k)``: k; ``sample_noisy`` and ``sample_clean``: ``dims``;
  ``elbo(x, samples)``: 2 per draw);
- what is not the autoregressive network is free: ``quantize``, ``noise_levels``,
  ``value_order``, a VQ-VAE's ``encode`` and ``decode`` (one call per batch whatever
  the number of codes, as the anytime paper counts), a feature network's ``features``;
- anything else that reaches the model's torch modules (``model.net(x)``, a
  helper method of the model, the class function called on the instance) counts 1
  per forward call of a module the model holds.

One rule for every path, per example: **NFE is the number of target calls the example
took part in** (its sequential depth, the latency axis), averaged over the sampler
call's n examples and rounded up. A call on B of the n examples (a chunk, Jacobi's
still-active rows, a cache step computing B rows) adds 1 to each of the B. Beside it,
**positions evaluated per example** is the compute axis: a full pass adds every
position of each row it carries (``dims``), a cache step 1 per row, a ``window`` of
width k + 1 that many per row, a draft's proposal 1 per value. Ancestral sampling of
D values makes D calls either way; uncached it evaluates D * D positions per example,
through a key/value cache D; speculative sampling with k = 4 that finishes in 10
verifications makes 10 target calls of 5 positions each: NFE 10, 50 positions.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from arbench.plugin.calls import Mark, declared, every_position, rows
from arbench.plugin.capabilities import PROTOCOLS

COUNTER_ATTRIBUTE = "_arbench_counter"
HOOKED_ATTRIBUTE = "_arbench_counted"


def _marks(model: Any) -> dict[str, Mark]:
    """The marked methods `model` may have: its class's own, then every capability's."""
    return declared([type(model), *PROTOCOLS.values()])


_INSIDE = threading.local()
_METERS = threading.local()  # the FLOP meters (`arbench.run.flops`) on this thread, innermost last


def metered(counter: CallCounter, key: tuple[Any, ...], run: Callable[[], Any],
            positions_of: Callable[[Any], float]) -> Any:
    """Run an outermost counted call (`run`) under this thread's FLOP meter, if one is on:
    measured the first time its `key` (method and argument shapes) is seen, charged at the
    FLOPs per position measured then afterwards (`arbench.run.flops.FlopMeter.counted_call`)."""
    meters = getattr(_METERS, "stack", None)
    if not meters:
        return run()
    return meters[-1].counted_call(counter.flop_rates, key, run, positions_of)


def push_meter(meter: Any) -> None:
    """A FLOP meter starts on this thread."""
    _METERS.stack = [*getattr(_METERS, "stack", []), meter]


def pop_meter() -> None:
    """The innermost FLOP meter on this thread stops."""
    _METERS.stack = _METERS.stack[:-1]


def signature(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """What a call's FLOPs depend on: the shapes and types of its tensors, its integers and
    strings (a position, a number of codes), not its float values (a noise level)."""
    def one(value: Any) -> Any:
        shape = getattr(value, "shape", None)
        if shape is not None:
            return (tuple(shape), str(getattr(value, "dtype", "")))
        if isinstance(value, bool | int | str) or value is None:
            return value
        return type(value).__name__

    return (*map(one, args), *((key, one(value)) for key, value in sorted(kwargs.items())))


def inside_counted_call() -> bool:
    """Whether this thread is inside a model call that a counter now counting has seen (or,
    for a free method, passed): compute there is accounted for (`arbench.run.flops`)."""
    return getattr(_INSIDE, "depth", 0) > 0


class Clock:
    """The seconds and example-evaluations of a model's outermost network calls while a
    timed replay runs (`CallCounter.clocking`): what a sampler's time spends in its
    target's and its draft's calls, the rest being its own."""

    def __init__(self) -> None:
        self.evaluations, self.seconds = 0.0, 0.0

    def add(self, evaluations: float, started: float) -> None:
        """A call of `evaluations` that began at ``time.perf_counter()`` `started` returned."""
        self.evaluations += evaluations
        self.seconds += time.perf_counter() - started


class CallCounter:
    """Example-evaluations and positions evaluated while `counting` is on; nested model calls
    count once. The nesting depth is each thread's own, so calls from a thread running
    beside the sampler's loop are outermost calls too, and additions are locked: none is
    lost."""

    def __init__(self) -> None:
        self.active = False
        self.clock: Clock | None = None  # while `clocking`
        self.evaluations = 0.0
        self.positions = 0.0
        self.flop_rates: dict[tuple[Any, ...], float] = {}  # FLOPs per position, by call
        self._thread = threading.local()
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> CallCounter:
        """A copy of a counted model (or of a module it holds) counts into the same counter."""
        return self

    def __copy__(self) -> CallCounter:
        return self

    @property
    def depth(self) -> int:
        """How deep the calling thread is inside counted model calls."""
        return getattr(self._thread, "depth", 0)

    @depth.setter
    def depth(self, value: int) -> None:
        self._thread.depth = value

    @contextmanager
    def counting(self) -> Iterator[CallCounter]:
        """Count from zero for the duration of the block (one sampler call)."""
        self.active, self.depth, self.evaluations, self.positions = True, 0, 0.0, 0.0
        try:
            yield self
        finally:
            self.active = False

    @contextmanager
    def clocking(self, clock: Clock) -> Iterator[Clock]:
        """Add the outermost network calls of the block (a timed replay, counted or not) to
        `clock`: a perf_counter read before and after each, no device synchronisation (on
        a GPU a call's seconds are its launch's)."""
        self.clock = clock
        try:
            yield clock
        finally:
            self.clock = None

    def enter(self) -> None:
        """A model call starts on this thread (calls inside it are not counted again)."""
        self.depth += 1
        if self.active:
            _INSIDE.depth = getattr(_INSIDE, "depth", 0) + 1

    def leave(self) -> None:
        """The model call `enter` began has returned or raised."""
        self.depth -= 1
        if self.active:
            _INSIDE.depth -= 1

    def add(self, evaluations: float, positions: float) -> None:
        """Add what an outermost model call evaluated while counting is on."""
        if self.active and self.depth == 0:
            with self._lock:
                self.evaluations += evaluations
                self.positions += positions

    def per_example(self, n: int) -> int:
        """The NFE of a call on `n` examples (`per_example`)."""
        return per_example(self.evaluations, n)


def per_example(evaluations: float, n: int) -> int:
    """The calls per example of `evaluations` example-evaluations over `n` examples,
    rounded up: the NFE rule of the module docstring."""
    return math.ceil(evaluations / max(n, 1) - 1e-9)


DRAFTS = CallCounter()
"""What every draft handed to arbench (`draft_model`) counts into; the cost meter turns it
on for a sampler's scored call, as it does the target's counter."""


def draft_model(model: Any) -> Any:
    """Hand arbench a draft (a cheap model a sampler proposes values with): its network
    calls are counted like the target's and recorded as ``draft_nfe``. Returns `model`."""
    instrument(model, DRAFTS)
    return model


def counter_of(model: Any) -> CallCounter:
    """The counter of `model`, instrumenting it on first use (idempotent)."""
    counter = getattr(model, COUNTER_ATTRIBUTE, None)
    if counter is None:
        counter = CallCounter()
        instrument(model, counter)
    return counter


def instrument(model: Any, counter: CallCounter) -> None:
    """Make `model` count into `counter`: its capability methods are wrapped on the instance
    (the class and its type checks are untouched), and each torch module it holds gets
    forward hooks that count calls made outside those methods."""
    if getattr(model, COUNTER_ATTRIBUTE, None) is counter:
        return
    already = getattr(model, COUNTER_ATTRIBUTE, None) is not None
    object.__setattr__(model, COUNTER_ATTRIBUTE, counter)
    if already:  # a sub-model seen again under another parent: its wrappers read the attribute
        return
    for name, mark in _marks(model).items():
        method = getattr(model, name, None)
        if callable(method) and not isinstance(method, type):
            object.__setattr__(model, name, _wrap(model, name, mark, method))
    for module in _modules(model):
        if not getattr(module, HOOKED_ATTRIBUTE, False):  # a module shared with a sub-model
            object.__setattr__(module, HOOKED_ATTRIBUTE, True)
            module.register_forward_pre_hook(functools.partial(_module_called, model),
                                             with_kwargs=True)
            module.register_forward_hook(functools.partial(_module_returned, model),
                                         always_call=True)


def _module_called(model: Any, module: Any, args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> None:
    """A module the model holds is called: 1 evaluation of each row of its first tensor
    argument, positional or by keyword (``net(input_ids=...)``, as Hugging Face's
    ``generate`` calls it), a full pass of that tensor's positions."""
    counter: CallCounter = getattr(model, COUNTER_ATTRIBUTE)
    first = next((value for value in (*args, *kwargs.values()) if hasattr(value, "shape")),
                 None)
    counter.add(rows(first), every_position(model, first))
    counter.enter()


def _module_returned(model: Any, module: Any, args: Any, output: Any) -> None:
    getattr(model, COUNTER_ATTRIBUTE).leave()


def _wrap(model: Any, name: str, mark: Mark, method: Callable[..., Any]
          ) -> Callable[..., Any]:
    @functools.wraps(method)
    def counted(*args: Any, **kwargs: Any) -> Any:
        counter: CallCounter = getattr(model, COUNTER_ATTRIBUTE)
        outermost, positions = counter.active and counter.depth == 0, 0.0
        if outermost and mark.cost is not None:
            positions = float((mark.positions or every_position)(model, *args, **kwargs))
            counter.add(float(mark.cost(model, *args, **kwargs)), positions)
        clock, clocked = (counter.clock, mark.cost) if counter.depth == 0 else (None, None)
        started = time.perf_counter()
        counter.enter()
        try:
            result = (metered(counter, (id(model), name, signature(args, kwargs)),
                              lambda: method(*args, **kwargs), lambda _: positions)
                      if outermost else method(*args, **kwargs))
        finally:
            counter.leave()
        if clock is not None and clocked is not None:
            clock.add(float(clocked(model, *args, **kwargs)), started)
        if mark.kind == "cache" and result is not None:
            return _CountedCache(result, counter)
        if mark.kind == "model":
            instrument(result, counter)
        return result

    return counted


class _CountedCache:
    """An incremental cache charged for the rows it computes: its ``logits`` step counts one
    call and one position of each row of the logits it returns, its ``window`` call one
    call and `width` positions of each, unless the cache says how many positions per row
    its last call evaluated (``step_positions``)."""

    def __init__(self, cache: Any, counter: CallCounter) -> None:
        self._cache, self._counter = cache, counter

    def logits(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(self._cache.logits, 1, *args, **kwargs)

    def _call(self, method: Callable[..., Any], width: int, *args: Any, **kwargs: Any
              ) -> Any:
        counter = self._counter
        outermost = counter.active and counter.depth == 0
        clock, started = counter.clock if counter.depth == 0 else None, time.perf_counter()
        counter.enter()
        try:
            key = (type(self._cache).__qualname__, method.__name__, signature(args, kwargs))
            logits = (metered(counter, key, lambda: method(*args, **kwargs),
                              lambda out: self._positions(out, width))
                      if outermost else method(*args, **kwargs))
        finally:
            counter.leave()
        if clock is not None:
            clock.add(rows(logits), started)
        counter.add(rows(logits), self._positions(logits, width))
        return logits

    def _positions(self, logits: Any, width: int) -> float:
        """The positions a step computed: its rows times its width (or `step_positions`)."""
        return float(rows(logits) * getattr(self._cache, "step_positions", width))

    def _window(self, method: Callable[..., Any], x: Any, starts: Any, width: int) -> Any:
        return self._call(method, width, x, starts, width)

    def __getattr__(self, attribute: str) -> Any:
        found = getattr(self._cache, attribute)  # a cache without `window` has none here
        return functools.partial(self._window, found) if attribute == "window" else found


def _modules(model: Any, depth: int = 2) -> list[Any]:
    """The torch modules `model` holds as attributes (in lists, dicts or sub-objects up to
    `depth` levels down); their children are reached through them."""
    import torch

    found: list[Any] = []
    seen: set[int] = set()

    def visit(value: Any, level: int) -> None:
        if id(value) in seen or level > depth:
            return
        seen.add(id(value))
        if isinstance(value, torch.nn.Module):
            found.append(value)
        elif isinstance(value, list | tuple):
            for item in value:
                visit(item, level + 1)
        elif isinstance(value, dict):
            for item in value.values():
                visit(item, level + 1)
        elif hasattr(value, "__dict__") and not isinstance(value, type | torch.Tensor):
            for item in vars(value).values():
                visit(item, level + 1)

    for value in vars(model).values():
        visit(value, 0)
    return found
