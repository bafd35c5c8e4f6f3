"""Cached vs naive ancestral sampling (WaveNet queues, PixelCNN rows), side by side in one run.

Naive sampling runs the network over the whole history (here: one receptive
field) for every new sample; the cache steps each layer once (see
`arbench_plugins.models.wavenet.cache`). Both cost the same at every step, so
`--steps` steps of each are timed (best of `--repeats`) and printed per
sample step, with the ratio, for WaveNets of receptive field 512, 1024 and
2048 (2 stacks of 8, 9, 10 dilation layers; random weights: speed does not
depend on them) and each batch size. Then the digits PixelCNN (shipped sizes, 8x8):
a whole 64-pixel sample, naive vs running only the rows drawn so far.

    python benchmarks/ancestral_speed.py [--steps 64] [--batch 1 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
from functools import partial
from types import SimpleNamespace

import torch
from timing import best_of

from arbench_plugins.models.pixelcnn.model import TRAIN_DEFAULTS as PIXELCNN
from arbench_plugins.models.pixelcnn.model import PixelCNN, PixelCNNNet
from arbench_plugins.models.wavenet.model import ARCH_DEFAULTS, WaveNet, WaveNetNet


def wavenet(layers: int, length: int) -> WaveNet:
    torch.manual_seed(0)
    net = WaveNetNet(num_levels=256, shape=[length], **{**ARCH_DEFAULTS, "layers": layers})
    return WaveNet(net.eval(), SimpleNamespace(shape=(length,), num_levels=256))


def pixelcnn() -> PixelCNN:
    torch.manual_seed(0)
    sizes = {key: PIXELCNN[key] for key in ("channels", "blocks", "first_kernel", "kernel")}
    net = PixelCNNNet(num_levels=17, shape=[1, 8, 8], **sizes)
    return PixelCNN(net.eval(), SimpleNamespace(num_levels=17, shape=(1, 8, 8)))


def naive_steps(model: WaveNet | PixelCNN, batch: int, length: int, steps: int) -> None:
    """`steps` naive steps on examples of the model's shape whose last axis is `length`."""
    generator = torch.Generator().manual_seed(0)
    x = torch.zeros(batch, *model.shape[:-1], length, dtype=torch.long)
    with torch.no_grad():
        for i in range(steps):
            x.view(batch, -1)[:, i] = model.sample_value(x, i, generator)


def cached_steps(model: WaveNet | PixelCNN, batch: int, steps: int) -> None:
    generator = torch.Generator().manual_seed(0)
    cache, previous = model.incremental(batch), None
    for _ in range(steps):
        probs = torch.softmax(cache.logits(previous), dim=-1)
        previous = torch.multinomial(probs, 1, generator=generator).squeeze(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")
    print(f"{'receptive field':>15} {'batch':>5} {'naive ms/step':>13} {'cached ms/step':>14} "
          f"{'speed-up':>8}")
    for layers in (8, 9, 10):
        field = 2 + ARCH_DEFAULTS["stacks"] * (2**layers - 1)  # WaveNetNet.receptive_field
        model = wavenet(layers, field)
        for batch in args.batch:
            naive = best_of(partial(naive_steps, model, batch, field, args.steps), args.repeats)
            cached = best_of(partial(cached_steps, model, batch, args.steps), args.repeats)
            print(f"{field:>15} {batch:>5} {1000 * naive / args.steps:>13.2f} "
                  f"{1000 * cached / args.steps:>14.3f} {naive / cached:>7.1f}x", flush=True)
    model = pixelcnn()
    print(f"\nPixelCNN 8x8, one sample (64 steps)\n{'batch':>5} {'naive ms':>9} "
          f"{'rows so far ms':>14} {'speed-up':>8}")
    for batch in [*args.batch, 256]:
        naive = best_of(partial(naive_steps, model, batch, 8, 64), args.repeats)
        cached = best_of(partial(cached_steps, model, batch, 64), args.repeats)
        print(f"{batch:>5} {1000 * naive:>9.1f} {1000 * cached:>14.1f} {naive / cached:>7.2f}x",
              flush=True)


if __name__ == "__main__":
    main()
