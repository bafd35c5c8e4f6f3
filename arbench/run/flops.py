"""Compute no sampler can hide: floating-point operations counted at the ATen level.

Counting calls (`arbench.run.counting`) sees the model's methods and the modules it holds;
a network reached some other way (its ``forward`` called directly, its child modules
one by one, a rebuilt copy, a traced one, a model kept from an earlier cell) is not
seen there. Every such path still runs ATen operators, and `FlopMeter`, a torch
dispatch mode around the scored sampler call, sees each of them whatever Python path led
to it. It counts the operators torch has FLOP formulas for
(`torch.utils.flop_counter.flop_registry`: matrix products, convolutions, attention),
and says where each ran:

- ``counted``: inside a model call that arbench counted (or a free method it passed);
- ``backward``: in autograd's backward pass (PnF's and smoothing's gradients);
- ``elsewhere``: anywhere else, the compute that no counted call accounts for.

A dispatch mode costs every operator it sees some microseconds (25 us here against 3 us
for a small product), so it looks into a counted call (`counted_call`) only the first time
that call's method and argument shapes are seen in the model's life; afterwards the call
runs with the meter off and is charged the FLOPs per position measured then, times its
own positions (a cache step's rows so far, a window's width). A key/value cache's step is
so charged its first step's rate: attention's growth with the prefix is not seen. What
runs outside counted calls, the sampler's own code, is always looked at.

`unaccounted` turns that into a verdict: FLOPs elsewhere beyond `TOLERANCE` of the counted
ones, or a backward pass larger than `BACKWARD_PER_FORWARD` times the counted forward
FLOPs, is compute a sampler made and did not let arbench count. A dispatch mode is
the thread's own: calls a sampler makes from a thread it starts are counted as calls
(`CallCounter`) but their FLOPs are not seen here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
from torch.utils.flop_counter import flop_registry

from arbench.run.counting import inside_counted_call, pop_meter, push_meter

TOLERANCE = 0.01
"""FLOPs elsewhere allowed, as a share of the counted FLOPs (a sampler's own small
products, such as a mixing matrix); a hidden network pass is far above it."""
BACKWARD_PER_FORWARD = 3.0
"""The backward pass of a counted forward costs about 1 (inputs) or 2 (inputs and
weights) times its FLOPs; 3 leaves room and stops a forward hidden in a backward hook."""


class FlopMeter(TorchDispatchMode):
    """FLOPs of the operators run while the mode is on, by where they ran."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.counted = 0.0
        self.backward = 0.0
        self.elsewhere = 0.0
        self._plain: set[Any] = set()  # operators with no decomposition to look into

    def __enter__(self) -> FlopMeter:
        push_meter(self)
        super().__enter__()  # type: ignore[no-untyped-call]
        return self

    def __exit__(self, *args: Any) -> None:
        super().__exit__(*args)  # type: ignore[no-untyped-call]
        pop_meter()

    def counted_call(self, rates: dict[tuple[Any, ...], float], key: tuple[Any, ...],
                     run: Callable[[], Any], positions_of: Callable[[Any], float]) -> Any:
        """Run a counted model call: the first time its `key` is seen, with every operator
        counted, keeping its FLOPs per position in `rates`; afterwards with the meter off
        (no operator pays for it), charged that rate times the call's positions."""
        rate = rates.get(key)
        if rate is None:
            before = self.counted
            result = run()
            rates[key] = (self.counted - before) / max(positions_of(result), 1.0)
            return result
        with _disable_current_modes():
            result = run()
        self.counted += rate * max(positions_of(result), 1.0)
        return result

    @property
    def total(self) -> float:
        """Every FLOP seen, wherever it ran."""
        return self.counted + self.backward + self.elsewhere

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None
                           ) -> Any:
        kwargs = kwargs or {}
        formula = flop_registry.get(func._overloadpacket)
        if formula is None and func not in self._plain:
            with self:  # a composite operator: count the products it is made of
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
            self._plain.add(func)
        out = func(*args, **kwargs)
        if formula is not None:
            flops = float(formula(*args, **kwargs, out_val=out))
            if torch._C._current_graph_task_id() != -1:
                self.backward += flops
            elif inside_counted_call():
                self.counted += flops
            else:
                self.elsewhere += flops
        return out


def unaccounted(meter: FlopMeter) -> str | None:
    """What a sampler computed beyond its counted calls, in words; None when nothing."""
    allowed = TOLERANCE * meter.counted
    if meter.elsewhere > allowed:
        return (f"{meter.elsewhere:.3g} FLOPs ran outside the model calls arbench counts "
                f"(counted calls ran {meter.counted:.3g}; allowed {allowed:.3g})")
    limit = BACKWARD_PER_FORWARD * meter.counted
    if meter.backward > limit:
        return (f"a backward pass ran {meter.backward:.3g} FLOPs, more than "
                f"{BACKWARD_PER_FORWARD:g} times the {meter.counted:.3g} of the counted "
                "forward calls")
    return None
