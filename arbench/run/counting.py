"""Network calls counted by arbench, not taken from a sampler's word.

While a sampler runs, the model it was handed counts its own network evaluations
(`instrument`, installed once per loaded model). What each method costs is declared
where the method is (`arbench.plugin.calls`: the capabilities' Protocols mark theirs, a
model or a draft may mark its own). The convention, per example:

- a batched call of a network method is 1 (``logits``, ``log_prob``, ``sample_value``,
  ``smoothed_log_prob``, ``step_log_probs``, ``noisy_log_prob``, ``clean_log_prob``, a
  draft's ``logits_at``), as is one step of an incremental cache
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

A call on B of the sampler's n examples (a chunk, or Jacobi's still-active rows)
adds B example-evaluations; the NFE of a sampler call is their total over n,
rounded up: the network evaluations each example cost, on average.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from arbench.plugin.calls import Cost, Kind, declared, rows
from arbench.plugin.capabilities import PROTOCOLS

COUNTER_ATTRIBUTE = "_arbench_counter"
HOOKED_ATTRIBUTE = "_arbench_counted"


def _marks(model: Any) -> dict[str, tuple[Kind, Cost | None]]:
    """The marked methods `model` may have: its class's own, then every capability's."""
    return declared([type(model), *PROTOCOLS.values()])


class CallCounter:
    """Example-evaluations made while `counting` is on; nested model calls count once. The
    nesting depth is each thread's own, so calls from a thread running beside the
    sampler's loop are outermost calls too, and additions are locked: none is lost."""

    def __init__(self) -> None:
        self.active = False
        self.evaluations = 0.0
        self._thread = threading.local()
        self._lock = threading.Lock()

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
        self.active, self.depth, self.evaluations = True, 0, 0.0
        try:
            yield self
        finally:
            self.active = False

    def add(self, evaluations: float) -> None:
        """Add example-evaluations made by an outermost model call while counting is on."""
        if self.active and self.depth == 0:
            with self._lock:
                self.evaluations += evaluations

    def per_example(self, n: int) -> int:
        """The NFE of a call on `n` examples: evaluations / n, rounded up."""
        return math.ceil(self.evaluations / max(n, 1) - 1e-9)


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
    (the class and its type checks are untouched), and each torch module it holds gets a
    forward pre-hook that counts calls made outside those methods."""
    if getattr(model, COUNTER_ATTRIBUTE, None) is counter:
        return
    already = getattr(model, COUNTER_ATTRIBUTE, None) is not None
    object.__setattr__(model, COUNTER_ATTRIBUTE, counter)
    if already:  # a sub-model seen again under another parent: its wrappers read the attribute
        return
    for name, (kind, cost) in _marks(model).items():
        method = getattr(model, name, None)
        if callable(method) and not isinstance(method, type):
            object.__setattr__(model, name, _wrap(model, kind, cost, method))
    for module in _modules(model):
        if not getattr(module, HOOKED_ATTRIBUTE, False):  # a module shared with a sub-model
            object.__setattr__(module, HOOKED_ATTRIBUTE, True)
            module.register_forward_pre_hook(
                lambda module, args: getattr(model, COUNTER_ATTRIBUTE).add(
                    rows(args[0]) if args else 1))


def _wrap(model: Any, kind: Kind, cost: Cost | None, method: Callable[..., Any]
          ) -> Callable[..., Any]:
    @functools.wraps(method)
    def counted(*args: Any, **kwargs: Any) -> Any:
        counter: CallCounter = getattr(model, COUNTER_ATTRIBUTE)
        if cost is not None and counter.active and counter.depth == 0:
            counter.add(float(cost(model, *args, **kwargs)))
        counter.depth += 1
        try:
            result = method(*args, **kwargs)
        finally:
            counter.depth -= 1
        if kind == "cache" and result is not None:
            return _CountedCache(result, counter, int(args[0] if args else kwargs["n"]))
        if kind == "model":
            instrument(result, counter)
        return result

    return counted


class _CountedCache:
    """An incremental cache whose ``logits`` step and ``window`` call (positions of every
    row at once) each count one call for each of its n rows."""

    def __init__(self, cache: Any, counter: CallCounter, n: int) -> None:
        self._cache, self._counter, self._n = cache, counter, n

    def logits(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(self._cache.logits, *args, **kwargs)

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self._counter.add(self._n)
        self._counter.depth += 1
        try:
            return method(*args, **kwargs)
        finally:
            self._counter.depth -= 1

    def __getattr__(self, attribute: str) -> Any:
        found = getattr(self._cache, attribute)  # a cache without `window` has none here
        return functools.partial(self._call, found) if attribute == "window" else found


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
