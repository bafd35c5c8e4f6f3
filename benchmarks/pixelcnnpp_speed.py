"""PixelCNN++ ancestral sampling: the row-band cache vs the naive loop, side by side.

The naive loop runs the whole network for every value (3 per pixel:
`PixelCNNPP.sample_value`); the cache (`pixelcnnpp_cache.RowBands`) recomputes
one row per scale per pixel and reads all three channels from it. Both are
timed per value at 32x32x3 and the given batch (random weights: speed does not
depend on them), for the `tiny` preset and the original's `cifar10` sizes
(nr_resnet 5, nr_filters 160, 10 mixtures). Naive: `--values` values in the
middle of the image. Cached: image rows 4 to 7 (after rows 0-3 untimed), a
whole period of the schedule (scale 2 works on one row in four, scale 1 on
one in two). The last column extrapolates one whole 32x32 sample.

    python benchmarks/pixelcnnpp_speed.py [--batch 16] [--values 6] [--repeats 2]
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import torch

from arbench_plugins.models.pixelcnnpp.model import SIZES, PixelCNNPP, SigmaPixelCNNPP

SHAPE = (3, 32, 32)


def model(preset: str) -> PixelCNNPP:
    torch.manual_seed(0)
    net = SigmaPixelCNNPP(list(SHAPE), 256, embed=32, **{**SIZES[preset], "dropout": 0.0})
    return PixelCNNPP(net.eval(), SimpleNamespace(shape=SHAPE, num_levels=256))


def naive_ms_per_value(pp: PixelCNNPP, batch: int, values: int, repeats: int) -> float:
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (batch, *SHAPE), generator=generator)
    middle = [16 * 32 + 16 + i * 1024 for i in range(3)] * values  # (16, 16), each channel
    best = float("inf")
    with torch.no_grad():
        for _ in range(repeats):
            start = time.perf_counter()
            for i in middle[:values]:
                pp.sample_value(x, i, generator)
            best = min(best, (time.perf_counter() - start) / values)
    return 1000 * best


def cached_ms_per_value(pp: PixelCNNPP, batch: int, repeats: int) -> float:
    untimed, timed = 4 * 32 * 3, 4 * 32 * 3  # values in rows 0-3, then rows 4-7
    best = float("inf")
    for _ in range(repeats):
        generator = torch.Generator().manual_seed(0)
        cache, previous = pp.incremental(batch), None
        for step in range(untimed + timed):
            if step == untimed:
                start = time.perf_counter()
            probs = torch.softmax(cache.logits(previous), dim=-1)
            previous = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        best = min(best, (time.perf_counter() - start) / timed)
    return 1000 * best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--values", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--presets", nargs="+", default=["tiny", "cifar10"])
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}, batch {args.batch}, 32x32x3")
    print(f"{'preset':>8} {'naive ms/value':>14} {'cached ms/value':>15} {'speed-up':>8} "
          f"{'cached s/sample':>15}")
    for preset in args.presets:
        pp = model(preset)
        naive = naive_ms_per_value(pp, args.batch, args.values, args.repeats)
        cached = cached_ms_per_value(pp, args.batch, args.repeats)
        print(f"{preset:>8} {naive:>14.1f} {cached:>15.2f} {naive / cached:>7.1f}x "
              f"{cached * 3072 / 1000:>15.1f}", flush=True)


if __name__ == "__main__":
    main()
