"""Where a speculative sampling round's time goes, as fractions of one cached target step,
set against the standard bound.

Batch 1, one thread, a shipped text transformer (`--model`: the small one, 158k
parameters, or transformer-medium, 4.8M; raster order, key/value cache). A
round is: the draft proposes k values (``draft``, with the proposal's bookkeeping, per
value: c), the target verifies
them through its cache's window of k + 1 positions (``verify``: v), then acceptance,
the residual draw and bookkeeping (``rule``), and the loop (``other``). The step is
one cached step of the target (``KVCache.logits``), the median of a sequence's steps.
With the measured acceptance a, the bound on the speed-up over cached ancestral
sampling is (1 - a^(k+1)) / ((1 - a)(k c + v)) (Leviathan et al., 2023, with
verification costing v steps); the round's other costs are what keeps a sampler below
it. Each part is timed around its call in every round of `--samples` samples after a
warm-up; medians of `--repeats` passes.

    python benchmarks/speculative_profile.py [--k 2 4 8] [--orders 3 5] [--samples 40]
        [--model transformer-medium]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from timing import cached_step

from arbench import load_model
from arbench_plugins.datasets.text import Text
from arbench_plugins.samplers import speculative

PARTS = ("draft", "verify", "rule", "other")


def timed(spent: dict[str, float], part: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """`method`, adding its seconds to ``spent[part]``."""
    def call(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            spent[part] += time.perf_counter() - started
    return call


def profile(model: Any, text: Text, k: int, order: int, samples: int) -> dict[str, float]:
    """Seconds per round of each part, rounds, proposals and acceptance of `samples` calls."""
    sampler = speculative.Speculative(k=k, draft_order=order)
    spent = dict.fromkeys(PARTS, 0.0)
    verify, window_cache = speculative._State.verify, speculative._window_cache
    rounds = proposed = accepted = 0

    def cache(*args: Any) -> Any:
        found = window_cache(*args)
        found.window = timed(spent, "window", found.window)
        return found

    def counted_verify(state: Any, *args: Any) -> None:
        nonlocal rounds
        rounds += 1
        timed(spent, "verify+rule", verify)(state, *args)

    spent["window"] = spent["verify+rule"] = 0.0
    speculative._window_cache, speculative._State.verify = cache, counted_verify
    try:
        sampler.sample(model, text, 1, None, torch.Generator().manual_seed(0))  # warm-up
        sampler._propose = timed(spent, "draft", sampler._propose)  # type: ignore[method-assign]
        spent.update(dict.fromkeys(spent, 0.0))
        rounds, total = 0, 0.0
        for seed in range(samples):
            started = time.perf_counter()
            out = sampler.sample(model, text, 1, None, torch.Generator().manual_seed(seed))
            total += time.perf_counter() - started
            share = out.diagnostics.get("acceptance", 0.0)
            proposed += 1
            accepted += share  # mean of the per-sample acceptance
    finally:
        speculative._window_cache, speculative._State.verify = window_cache, verify
    per_round = {"draft": spent["draft"], "verify": spent["window"],
                 "rule": spent["verify+rule"] - spent["window"]}
    per_round["other"] = total - sum(per_round.values())
    return {**{part: value / rounds for part, value in per_round.items()},
            "acceptance": accepted / proposed, "values": text.dims * samples / rounds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--orders", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default="transformer",
                        help="the text target: transformer or transformer-medium")
    args = parser.parse_args()
    torch.set_num_threads(1)
    text = Text()
    text.name = "text"
    model = load_model(args.model, text, torch.device("cpu"))
    step = statistics.median(cached_step(model, text.dims) for _ in range(20))
    print(f"torch {torch.__version__}, 1 thread; text {args.model} "
          f"({sum(p.numel() for p in model.net.parameters()):,} parameters); cached step "
          f"{step * 1e6:.0f} us. Parts in cached target steps: draft per value (c), verify "
          f"(v), rule and other per round.")
    print(f"{'order':>5} {'k':>3} {'c':>6} {'v':>6} {'rule':>6} {'other':>6} {'round':>6} "
          f"{'accept':>7} {'MAT':>5} {'bound':>6} {'reached':>8}")
    for order in args.orders:
        for k in args.k:
            passes = [profile(model, text, k, order, args.samples) for _ in range(args.repeats)]
            part = {key: statistics.median(p[key] for p in passes) for key in passes[0]}
            c, v = part["draft"] / k / step, part["verify"] / step
            rule, other = part["rule"] / step, part["other"] / step
            a = part["acceptance"]
            bound = (1 - a ** (k + 1)) / ((1 - a) * (k * c + v))
            reached = part["values"] / (k * c + v + rule + other)
            print(f"{order:>5} {k:>3} {c:>6.3f} {v:>6.2f} {rule:>6.2f} {other:>6.2f} "
                  f"{k * c + v + rule + other:>6.2f} {a:>7.2f} {part['values']:>5.2f} "
                  f"{bound:>5.2f}x {reached / bound:>7.0%}")


if __name__ == "__main__":
    main()
