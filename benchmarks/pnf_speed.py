"""PnF speed, measured side by side in one run on the shipped piano WaveNet.

1. Overhead: one PnF Langevin step vs the model's own forward + backward on the
   same batch (the ratio is what the sampler adds on top of the network).
2. Scaling: PnF time for a fixed number of steps at several sequence lengths
   (PnF updates every position in parallel, so time should grow linearly).

    python benchmarks/pnf_speed.py [--batch 4] [--steps 20]
"""

from __future__ import annotations

import argparse

import torch
from timing import best_of

from arbench import load_model
from arbench_plugins.datasets.audio import Piano
from arbench_plugins.samplers.pnf import PnF


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    dataset = Piano()
    dataset.name = "piano"
    model = load_model("wavenet", dataset, torch.device("cpu"))
    for parameter in model.net.parameters():
        parameter.requires_grad_(False)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    print("\n1. PnF step vs the model's forward+backward (same batch, length 2048)")
    x = torch.rand(args.batch, 2048) * 2 - 1

    def forward_backward() -> None:
        for _ in range(args.steps):
            leaf = x.clone().requires_grad_(True)
            model.smoothed_log_prob(leaf, 0.1).sum().backward()

    sampler = PnF(levels=1, sigma_max=0.1, sigma_min=0.1)
    clip = Piano(clip_length=2048)

    def pnf() -> None:
        sampler.sample(model, clip, args.batch, args.steps, torch.Generator().manual_seed(0))

    bare, full = best_of(forward_backward) / args.steps, best_of(pnf) / args.steps
    print(f"  forward+backward {bare * 1e3:8.2f} ms   pnf step {full * 1e3:8.2f} ms   "
          f"ratio {full / bare:.3f}")

    print("\n2. PnF time for", args.steps, "steps vs sequence length")
    print(f"  {'length':>8} {'seconds':>9} {'s per 1k samples':>18}")
    for length in (512, 1024, 2048, 4096, 8192):
        clip = Piano(clip_length=length)  # only its shape is used; no clips are generated
        seconds = best_of(pnf, repeats=2)
        print(f"  {length:>8} {seconds:>9.3f} {seconds / length * 1e3:>18.4f}")


if __name__ == "__main__":
    main()
