"""What the benchmark scripts share: the best-of-N wall time of a call.

The minimum over repeats is the least disturbed measurement on a shared machine.
Scripts run as ``python benchmarks/NAME.py``, which puts this folder on the path.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """The fastest of `repeats` calls of `fn`, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
