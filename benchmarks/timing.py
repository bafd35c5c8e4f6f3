"""What the benchmark scripts share: the best-of-N wall time of a call, and the seconds of
one cached step of an incremental model.

The minimum over repeats is the least disturbed measurement on a shared machine.
Scripts run as ``python benchmarks/NAME.py``, which puts this folder on the path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """The fastest of `repeats` calls of `fn`, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def cached_step(model: Any, dims: int) -> float:
    """Seconds per step of one whole `dims`-step sequence through the model's cache
    (``model.incremental(1).logits``, what ancestral sampling runs), batch 1."""
    cache, previous = model.incremental(1), None
    start = time.perf_counter()
    for _ in range(dims):
        previous = cache.logits(previous).argmax(-1)
    return (time.perf_counter() - start) / dims
