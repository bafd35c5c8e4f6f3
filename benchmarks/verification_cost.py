"""What verifying k drafted values costs, in cached target steps, for each shipped text
transformer: the v of the speculative bound (1 - a^(k+1)) / ((1 - a)(k c + v)).

Batch 1, one thread. A cached step is the median per-step time of whole 64-step
sequences through the key/value cache (``KVCache.logits``, what ancestral sampling
runs); a verification of k values is one ``KVCache.window`` of k + 1 positions from
position 32, the 32 before it in the cache (what speculative sampling runs). Steps and
windows of every width are timed in turn in each of `--repeats` rounds, so a slow
spell hits them alike; each figure is the median over rounds.

    python benchmarks/verification_cost.py [--k 1 2 3 4 5 6 7 8] [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
from timing import cached_step

from arbench import load_model
from arbench_plugins.datasets.text import Text

MODELS = ("transformer", "transformer-medium")
START = 32  # the verified window's first position: half the sequence in the cache


def window_seconds(model: Any, x: torch.Tensor, width: int, calls: int = 5) -> float:
    """Median seconds of a window of `width` positions from `START`, the prefix cached."""
    cache = model.incremental(1)
    starts = torch.tensor([START])
    cache.window(x, torch.zeros(1, dtype=torch.long), START)  # the prefix's keys and values
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        cache.window(x, starts, width)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=list(range(1, 9)))
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    text = Text()
    text.name = "text"
    x = text.load("test")[:1]
    print(f"torch {torch.__version__}, 1 thread, batch 1: a window verifying k values "
          f"(k + 1 positions) in cached target steps, median of {args.repeats} rounds")
    print(f"{'model':<20} {'params':>10} {'step us':>8} " +
          " ".join(f"{'k=' + str(k):>6}" for k in args.k))
    for name in MODELS:
        model: Any = load_model(name, text, torch.device("cpu"))
        cached_step(model, text.dims)  # warm-up
        for k in args.k:
            window_seconds(model, x, k + 1, 1)
        steps: list[float] = []
        windows: dict[int, list[float]] = {k: [] for k in args.k}
        for _ in range(args.repeats):
            steps.append(cached_step(model, text.dims))
            for k in args.k:
                windows[k].append(window_seconds(model, x, k + 1))
        step = statistics.median(steps)
        size = sum(p.numel() for p in model.net.parameters())
        print(f"{name:<20} {size:>10,} {step * 1e6:>8.0f} " +
              " ".join(f"{statistics.median(windows[k]) / step:>6.2f}" for k in args.k))


if __name__ == "__main__":
    main()
