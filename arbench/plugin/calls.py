"""What a model's methods cost in network calls, declared on the methods themselves.

A capability's Protocol (`arbench.plugin.capabilities`) marks its methods, and a model
may mark its own: `network_call` (with what one call costs in example-evaluations,
``batched`` by default: one per row of the first tensor argument), `free` (it runs no
autoregressive network: counted 0, and the modules it runs are not counted either),
`returns_cache` (each step of the cache it returns counts one call of each of its rows)
and `returns_model` (the model it returns counts into the same counter). arbench reads
these marks (`declared`) when it counts the calls a sampler makes through a model
(`arbench.run.counting`); nothing else lists them.

A call also evaluates positions, the compute axis beside the calls: a network call
evaluates, by default, every position of each example it carries (a full pass,
`every_position`), or, for a method whose cost is its own, every position at each of
its evaluations; a method that computes fewer (a draft's proposal: one per value)
says so with ``positions=``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, Literal, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

Cost = Callable[..., float]
"""Example-evaluations of one call, from ``(model, *args, **kwargs)``."""

Kind = Literal["network", "free", "cache", "model"]
MARK = "__arbench_calls__"


@dataclasses.dataclass(frozen=True)
class Mark:
    """What a marked method is (`kind`) and, for a network call, what one call costs in
    example-evaluations and in positions evaluated (both from the call's arguments)."""

    kind: Kind
    cost: Cost | None = None
    positions: Cost | None = None


def rows(value: Any) -> int:
    """The examples a call carries: the leading size of its first tensor argument."""
    shape = getattr(value, "shape", None)
    return int(shape[0]) if shape else 1


def batched(model: Any, first: Any, *args: Any, **kwargs: Any) -> float:
    """One evaluation per example of the call's first argument (a batch)."""
    return rows(first)


def per_row(model: Any, first: Any) -> int:
    """The positions of one example: the model's `dims`, else the size of a row of the
    call's first tensor argument."""
    dims = getattr(model, "dims", None)
    if isinstance(dims, int):
        return dims
    shape = getattr(first, "shape", None)
    return math.prod(shape[1:]) if shape else 1


def every_position(model: Any, first: Any = None, *args: Any, **kwargs: Any) -> float:
    """A full pass: every position of each example of the call's first argument."""
    return rows(first) * per_row(model, first)


def one_position(model: Any, first: Any = None, *args: Any, **kwargs: Any) -> float:
    """One position of each example of the call's first argument."""
    return rows(first)


def network_call(cost: Cost = batched, positions: Cost | None = None) -> Callable[[F], F]:
    """Mark a method as a call of the autoregressive network costing `cost`
    example-evaluations and `positions` positions evaluated (by default a full pass per
    evaluation: `every_position` for a batched call, else `cost` times the model's
    positions per example)."""
    if positions is None:
        positions = every_position if cost is batched else _full_passes(cost)

    def mark(method: F) -> F:
        setattr(method, MARK, Mark("network", cost, positions))
        return method

    return mark


def _full_passes(cost: Cost) -> Cost:
    def positions(model: Any, *args: Any, **kwargs: Any) -> float:
        return cost(model, *args, **kwargs) * per_row(model, None)

    return positions


def free(method: F) -> F:
    """Mark a method that runs no autoregressive network (a decoder, a lookup)."""
    setattr(method, MARK, Mark("free"))
    return method


def returns_cache(method: F) -> F:
    """Mark a method returning an incremental cache whose every step counts one call of each
    row it computes and one position per row (``logits(previous)``), or `width` per row
    (``window(x, starts, width)``)."""
    setattr(method, MARK, Mark("cache"))
    return method


def returns_model(method: F) -> F:
    """Mark a method returning another model (a source's prior) that counts into the same
    counter."""
    setattr(method, MARK, Mark("model"))
    return method


def declared(classes: list[type]) -> dict[str, Mark]:
    """Every marked method of `classes` by name (an earlier class's mark wins); a name an
    overriding method does not mark keeps its base's mark."""
    found: dict[str, Mark] = {}
    for cls in classes:
        for klass in cls.__mro__:
            for name, value in vars(klass).items():
                mark = getattr(value, MARK, None)
                if mark is not None:
                    found.setdefault(name, mark)
    return found
