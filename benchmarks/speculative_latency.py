"""Batch-1 latency of speculative sampling against cached ancestral sampling, timed
interleaved, with an interval and its spread over repeated runs.

The protocol that survives a noisy machine (issue 46): in each round every sampler
draws the same `--examples` sequences one at a time (seed i for sequence i), the
samplers taking turns call by call, A B C in even rounds and C B A in odd ones, so that
a slow spell of the machine hits them alike. A sampler's round value is the median of
its calls' seconds; a speed-up is the reference's round value over the sampler's, per
round, reported as the mean over `--rounds` rounds with a 95% percentile bootstrap
interval over rounds. The whole measurement is repeated `--runs` times, one after
another, and the spread of the speed-ups printed (the goal: within +-10%).

The shipped text transformer (64 characters, 158k parameters), one thread.

    python benchmarks/speculative_latency.py [--rounds 7] [--examples 8] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
import torch

from arbench import load_model
from arbench_plugins.datasets.text import Text
from arbench_plugins.samplers.ancestral import Ancestral
from arbench_plugins.samplers.speculative import Speculative

RESAMPLES = 2000


def samplers() -> dict[str, Any]:
    """The reference first."""
    return {"ancestral (cached)": Ancestral(),
            "speculative k=4, 5-gram": Speculative(k=4, draft_order=5),
            "speculative k=4, 3-gram": Speculative(k=4, draft_order=3),
            "speculative k=2, 5-gram": Speculative(k=2, draft_order=5)}


def one_run(model: Any, text: Text, rounds: int, examples: int) -> dict[str, np.ndarray]:
    """Each sampler's round values (median seconds of its calls), ``(rounds,)``."""
    chosen = samplers()
    for sampler in chosen.values():  # warm-up: drafts fitted, caches allocated once
        sampler.sample(model, text, 1, None, torch.Generator().manual_seed(0))
    values: dict[str, list[float]] = {name: [] for name in chosen}
    for round_ in range(rounds):
        calls: dict[str, list[float]] = {name: [] for name in chosen}
        order = list(chosen) if round_ % 2 == 0 else list(reversed(chosen))
        for example in range(examples):
            for name in order:
                generator = torch.Generator().manual_seed(example)
                started = time.perf_counter()
                chosen[name].sample(model, text, 1, None, generator)
                calls[name].append(time.perf_counter() - started)
        for name, seconds in calls.items():
            values[name].append(statistics.median(seconds))
    return {name: np.asarray(seconds) for name, seconds in values.items()}


def speedup(reference: np.ndarray, own: np.ndarray) -> tuple[float, float, float]:
    """The mean per-round ratio and its 95% bootstrap interval over rounds."""
    ratios = reference / own
    rng = np.random.default_rng(0)
    means = rng.choice(ratios, (RESAMPLES, len(ratios))).mean(1)
    return float(ratios.mean()), *np.percentile(means, [2.5, 97.5]).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--examples", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    text = Text()
    text.name = "text"
    model = load_model("transformer", text, torch.device("cpu"))
    print(f"torch {torch.__version__}, 1 thread, batch 1; text transformer; {args.rounds} "
          f"rounds x {args.examples} sequences of {text.dims}, interleaved")
    found: dict[str, list[float]] = {}
    for run in range(args.runs):
        values = one_run(model, text, args.rounds, args.examples)
        reference_name, reference = next(iter(values.items()))
        print(f"run {run + 1}: {reference_name} {1e3 * reference.mean():.1f} ms per sequence")
        for name, own in list(values.items())[1:]:
            mean, low, high = speedup(reference, own)
            found.setdefault(name, []).append(mean)
            print(f"  {name:<26} {1e3 * own.mean():6.1f} ms  speed-up {mean:.2f}x "
                  f"[{low:.2f}, {high:.2f}]")
    if args.runs > 1:
        print("spread over runs (max / min - 1):")
        for name, means in found.items():
            print(f"  {name:<26} {' '.join(f'{m:.2f}x' for m in means)}  "
                  f"{max(means) / min(means) - 1:+.1%}")


if __name__ == "__main__":
    main()
