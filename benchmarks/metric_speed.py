"""Separation metrics' cost, side by side in one run: arbench's batched SI-SDR vs per-example
loops and mir_eval's BSS-eval SDR.

Scores `--batch` pairs of random `--length`-sample signals (estimate = reference
+ noise) with: arbench's `SISDR` metric (one batched torchmetrics call), the
same SI-SDR one example at a time, and `bss_eval_sources` from mir_eval (the
classic SDR with its 512-tap distortion filter, one example at a time, as
arbench's `sdr_db` calls it). Prints each time and its ratio to the batched
SI-SDR.

    python benchmarks/metric_speed.py [--batch 16] [--length 2048] [--repeats 10]
"""

from __future__ import annotations

import argparse
from functools import partial

import torch
from timing import best_of

from arbench_plugins.metrics.signal import SISDR, bss_eval_sdr


def per_example(metric: SISDR, estimate: torch.Tensor, reference: torch.Tensor) -> float:
    return sum(metric(e[None], r[None]) for e, r in zip(estimate, reference, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    reference = torch.randn(args.batch, args.length, generator=generator)
    estimate = reference + 0.3 * torch.randn(args.batch, args.length, generator=generator)
    metric = SISDR()
    calls = {
        "SI-SDR, batched (arbench)": partial(metric, estimate, reference),
        "SI-SDR, per example": partial(per_example, metric, estimate, reference),
        "BSS-eval SDR, per example (mir_eval)": lambda: [
            bss_eval_sdr(r[None].numpy(), e[None].numpy())
            for e, r in zip(estimate, reference, strict=True)],
    }
    for call in calls.values():
        call()  # warm up: the first calls pay for lazy initialisation
    timings = {name: best_of(call, args.repeats) for name, call in calls.items()}
    base = timings["SI-SDR, batched (arbench)"]
    print(f"{args.batch} pairs of {args.length} samples")
    for name, seconds in timings.items():
        print(f"{name:38s} {1000 * seconds:9.2f} ms  {seconds / base:7.1f}x")


if __name__ == "__main__":
    main()
