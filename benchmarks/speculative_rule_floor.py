"""How little the speculative rule can cost at batch 1: the fewest tensor calls it needs,
eager and under torch.compile, in cached steps of a shipped text transformer.

The rule after a verification is at least: the target's softmax, the uniforms, p and q
at the drafted values, the acceptance test, the accepted run (cumprod, sum), the
residual max(p - q, floor), its row at the run, its cumsum, the draw (a search), where
it is written, and the new prefix: about 17 calls. At batch 1 each is a dispatch of a
few microseconds, whatever the arithmetic, so the sum is a floor that a sampler's own
rule (``rule`` in `benchmarks/speculative_profile.py`, timed in the loop) cannot go
under without leaving eager PyTorch. This script times that bare sequence warm, in a
tight loop (the sampler's loop runs it after a forward pass, colder: about 1.5x), and
the same function compiled with inductor, against the median cached target step.

    python benchmarks/speculative_rule_floor.py [--k 4] [--model transformer-medium]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from timing import cached_step

from arbench import load_model
from arbench_plugins.datasets.text import Text


def bare_rule(logits: torch.Tensor, q: torch.Tensor, chosen: torch.Tensor,
              uniform: torch.Tensor, writes: torch.Tensor,
              prefix: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The rule's necessary calls for windows ``(n, k + 1, K)``: where the drawn value goes,
    the value and the new prefix."""
    k, levels = chosen.shape[1], logits.shape[-1]
    p = logits.softmax(-1)
    accepted = uniform[:, :k] * q.gather(2, chosen)[..., 0] < p.gather(2, chosen)[..., 0]
    run = accepted.cumprod(1).sum(1)
    weights = (p - q).clamp_(min=1e-20)
    cdf = weights.gather(1, run[:, None, None].expand(-1, -1, levels))[:, 0].cumsum(-1)
    drawn = torch.searchsorted(cdf[:, :-1], (uniform[:, k] * cdf[:, -1])[:, None], right=True)
    return writes.gather(1, run[:, None]), drawn, prefix + run + 1


def per_call(fn: Callable[[], object], calls: int = 2000, repeats: int = 7) -> float:
    """Median over `repeats` of the mean seconds of `calls` calls, after a warm-up."""
    for _ in range(calls // 10):
        fn()
    means = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        means.append((time.perf_counter() - started) / calls)
    return statistics.median(means)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--model", default="transformer")
    args = parser.parse_args()
    torch.set_num_threads(1)
    text = Text()
    model = load_model(args.model, text, torch.device("cpu"))
    step = statistics.median(cached_step(model, text.dims) for _ in range(20))
    generator = torch.Generator().manual_seed(0)
    k, levels = args.k, int(text.num_levels or 0)
    logits = torch.randn(1, k + 1, levels, generator=generator)
    q = torch.rand(1, k + 1, levels, generator=generator)
    q[:, k] = 0
    q /= q.sum(-1, keepdim=True).clamp(min=1)
    chosen = torch.randint(levels, (1, k, 1), generator=generator)
    writes, prefix = torch.arange(text.dims + k + 1)[None], torch.zeros(1, dtype=torch.long)
    compiled = torch.compile(bare_rule, dynamic=False, fullgraph=True)
    print(f"torch {torch.__version__}, 1 thread; {args.model}'s cached step "
          f"{step * 1e6:.0f} us; the bare rule at k = {k}, batch 1:")
    for name, rule in (("eager", bare_rule), ("compiled", compiled)):
        seconds = per_call(lambda rule=rule: rule(  # type: ignore[misc]
            logits, q, chosen, torch.rand(1, k + 1, generator=generator), writes, prefix))
        print(f"  {name:>8}: {seconds * 1e6:5.1f} us, {seconds / step:.3f} of a step")


if __name__ == "__main__":
    main()
