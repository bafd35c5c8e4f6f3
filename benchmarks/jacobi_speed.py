"""Jacobi decoding vs ancestral sampling at one seed, side by side in one run: network
calls, wall time, and whether the samples are the same.

Shipped checkpoints, since how fast the fixed point travels depends on the trained
model: the digits PixelCNN (64 pixels) and the piano WaveNet on clips of several
lengths, each with Jacobi over all positions (window 0) and with windows. Ancestral
runs with its cache (PixelCNN rows so far, WaveNet queues), the fastest exact
baseline arbench has. "calls/example" is the mean number of calls until an example's
sample was final; "NFE" is the batch's calls (the slowest example).

    python benchmarks/jacobi_speed.py [--lengths 128 256 512] [--windows 0 16 64]
"""

from __future__ import annotations

import argparse
from functools import partial
from types import SimpleNamespace
from typing import Any

import torch
from timing import best_of

from arbench import load_model
from arbench.plugin.contracts import Model, SampleOutput, Sampler
from arbench_plugins.datasets.audio import Piano
from arbench_plugins.datasets.digits import Digits
from arbench_plugins.samplers.ancestral import Ancestral
from arbench_plugins.samplers.jacobi import Jacobi


def draw(sampler: Sampler, model: Model, data: Any, n: int) -> SampleOutput:
    return sampler.sample(model, data, n, None, torch.Generator().manual_seed(0))


def compare(label: str, model: Model, data: Any, n: int, windows: list[int],
            repeats: int) -> None:
    exact = draw(Ancestral(), model, data, n)
    exact_s = best_of(partial(draw, Ancestral(), model, data, n), repeats)
    for window in windows:
        jacobi = Jacobi(window=window)
        fast = draw(jacobi, model, data, n)
        fast_s = best_of(partial(draw, jacobi, model, data, n), repeats)
        mean_calls = fast.diagnostics["calls_mean"]
        print(f"{label:>18} {data.dims:>5} {n:>5} {window:>6} {exact.nfe:>5} {fast.nfe:>5} "
              f"{mean_calls:>13.1f} {exact.nfe / fast.nfe:>9.2f}x {exact_s:>11.3f} "
              f"{fast_s:>10.3f} {exact_s / fast_s:>9.2f}x "
              f"{str(torch.equal(fast.samples, exact.samples)):>9}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--windows", type=int, nargs="+", default=[0, 16, 64])
    parser.add_argument("--batch", type=int, default=8, help="audio clips per call")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")
    print(f"{'data':>18} {'D':>5} {'batch':>5} {'window':>6} {'anc':>5} {'NFE':>5} "
          f"{'calls/example':>13} {'NFE ratio':>10} {'ancestral s':>11} {'jacobi s':>10} "
          f"{'speed-up':>10} {'identical':>9}")
    digits = Digits()
    digits.name = "digits"
    pixelcnn = load_model("pixelcnn", digits, torch.device("cpu"))
    for n in (1, 16, 256):
        compare("digits PixelCNN", pixelcnn, digits, n, [0, 8], args.repeats)
    piano = Piano()
    piano.name = "piano"
    wavenet = load_model("wavenet", piano, torch.device("cpu"))
    for length in args.lengths:
        clips = SimpleNamespace(dims=length, shape=(length,), num_levels=256)
        compare("piano WaveNet", wavenet, clips, args.batch, args.windows, args.repeats)


if __name__ == "__main__":
    main()
