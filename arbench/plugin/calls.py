"""What a model's methods cost in network calls, declared on the methods themselves.

A capability's Protocol (`arbench.plugin.capabilities`) marks its methods, and a model
may mark its own: `network_call` (with what one call costs in example-evaluations,
``batched`` by default: one per row of the first tensor argument), `free` (it runs no
autoregressive network: counted 0, and the modules it runs are not counted either),
`returns_cache` (each step of the cache it returns counts one call of each of its rows)
and `returns_model` (the model it returns counts into the same counter). arbench reads
these marks (`declared`) when it counts the calls a sampler makes through a model
(`arbench.run.counting`); nothing else lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

Cost = Callable[..., float]
"""Example-evaluations of one call, from ``(model, *args, **kwargs)``."""

Kind = Literal["network", "free", "cache", "model"]
MARK = "__arbench_calls__"


def rows(value: Any) -> int:
    """The examples a call carries: the leading size of its first tensor argument."""
    shape = getattr(value, "shape", None)
    return int(shape[0]) if shape else 1


def batched(model: Any, first: Any, *args: Any, **kwargs: Any) -> float:
    """One evaluation per example of the call's first argument (a batch)."""
    return rows(first)


def network_call(cost: Cost = batched) -> Callable[[F], F]:
    """Mark a method as a call of the autoregressive network costing `cost`."""
    def mark(method: F) -> F:
        setattr(method, MARK, ("network", cost))
        return method

    return mark


def free(method: F) -> F:
    """Mark a method that runs no autoregressive network (a decoder, a lookup)."""
    setattr(method, MARK, ("free", None))
    return method


def returns_cache(method: F) -> F:
    """Mark a method returning an incremental cache whose every step counts one call per
    row (``logits(previous)``, ``window(x, starts, width)``)."""
    setattr(method, MARK, ("cache", None))
    return method


def returns_model(method: F) -> F:
    """Mark a method returning another model (a source's prior) that counts into the same
    counter."""
    setattr(method, MARK, ("model", None))
    return method


def declared(classes: list[type]) -> dict[str, tuple[Kind, Cost | None]]:
    """Every marked method of `classes` by name (an earlier class's mark wins), with its
    kind and cost; a name an overriding method does not mark keeps its base's mark."""
    found: dict[str, tuple[Kind, Cost | None]] = {}
    for cls in classes:
        for klass in cls.__mro__:
            for name, value in vars(klass).items():
                mark = getattr(value, MARK, None)
                if mark is not None:
                    found.setdefault(name, mark)
    return found
