"""Anytime sampling speed vs code length, measured side by side in one run.

The anytime paper's claim: sampling time grows linearly in the number of codes
k drawn from the prior, so stopping early saves time in proportion. This times
the shipped ordered VQ-VAE on digits at every k (prior calls plus the one
decoder call) and prints each time as a ratio of the full code's, beside k / C,
and beside ancestral sampling of the shipped PixelCNN for scale.

    python benchmarks/anytime_speed.py [--batch 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from timing import best_of

from arbench import load_model
from arbench_plugins.datasets.digits import Digits
from arbench_plugins.samplers.ancestral import Ancestral
from arbench_plugins.samplers.anytime import Anytime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    dataset = Digits()
    dataset.name = "digits"
    device = torch.device("cpu")
    model = load_model("ordered-vqvae", dataset, device)
    sampler, codes = Anytime(), model.num_codes

    def anytime(k: int) -> Callable[[], object]:
        return lambda: sampler.sample(model, dataset, args.batch, k,
                                      torch.Generator().manual_seed(0))

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"best of {args.repeats}")
    anytime(1)()  # warm-up
    full = best_of(anytime(codes), args.repeats)
    print(f"\n{'k':>4} {'k / C':>7} {'ms/sample':>10} {'time / full':>12}")
    for k in range(1, codes + 1):
        seconds = full if k == codes else best_of(anytime(k), args.repeats)
        print(f"{k:>4} {k / codes:>7.3f} {seconds / args.batch * 1e3:>10.4f} "
              f"{seconds / full:>12.3f}")

    pixelcnn = load_model("pixelcnn", dataset, device)
    ancestral = best_of(lambda: Ancestral().sample(pixelcnn, dataset, args.batch, None,
                                                   torch.Generator().manual_seed(0)),
                        args.repeats)
    print(f"\nancestral PixelCNN (64 calls): {ancestral / args.batch * 1e3:.4f} ms/sample, "
          f"{ancestral / full:.2f}x the full anytime code")


if __name__ == "__main__":
    main()
