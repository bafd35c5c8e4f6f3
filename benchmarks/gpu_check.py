"""GPU readiness: what each paper table costs, reduced paper suites and the smoke suite on
one device, with figures.

First the cost part (`paper_cost.py`): each image recipe trains a few steps at its
paper preset and each paper suite samples a little, measured, then a table of the
projected device-hours of each paper table.

For each image paper suite it writes tiny data in the real formats (or uses
`--cifar DIR`, the real CIFAR-10 batches), trains its models at the tiny
preset, and runs the suite reduced (few examples, small budgets) with
``--device``; then it runs the whole smoke suite there and compares it with
the committed CPU leaderboard. It prints, per phase: wall time, cells per
second, and (with nvidia-smi) peak GPU memory and mean utilisation, sampled
once a second; then the CPU/GPU agreement of the smoke metrics (largest
difference per metric over the cells both ran) and `arbench compare`'s verdict.
Inception FID uses $ARBENCH_INCEPTION_WEIGHTS if set, else random weights.
text8 and the audio suites need files this script cannot fake; they are left out.

    python benchmarks/gpu_check.py [--device cuda] [--cifar DIR] [--skip-cost] [--skip-smoke]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import paper_cost
from paper_files import arbench, fake_data, inception_weights

from arbench.results.record import Record
from arbench.results.store import Store

REPO = Path(__file__).resolve().parents[1]
TINY = ["--set", "preset=tiny"]


class GPUMonitor:
    """nvidia-smi's utilisation and memory, once a second, while a phase runs."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> GPUMonitor:
        if shutil.which("nvidia-smi"):
            self.process = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
                 "--format=csv,noheader,nounits", "-l", "1"], stdout=subprocess.PIPE, text=True)
            threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            utilisation, memory = (float(v) for v in line.split(",")[:2])
            self.samples.append((utilisation, memory))

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            self.process.terminate()

    def summary(self) -> str:
        if not self.samples:
            return "peak memory -, utilisation - (no nvidia-smi)"
        utilisation = np.mean([u for u, _ in self.samples])
        return (f"peak memory {max(m for _, m in self.samples):.0f} MiB, "
                f"utilisation {utilisation:.0f}%")


def train(work: Path, model: str, dataset: str, out: str, *options: str) -> None:
    data = {"cifar10": "data/cifar10", "mnist": "data/mnist", "imagefolder": "data/celeba"}
    arbench("train", model, "--dataset", dataset, "--data-dir", data[dataset], *TINY,
            *options, "--out", out, cwd=work)


def suites(work: Path, weights: Path) -> dict[str, tuple[list[str], list[tuple[str, ...]]]]:
    """Each reduced suite: its `arbench run` options and the models it trains first."""
    quality = ["--set", f"unconditional.inception_weights={weights}",
               "--set", "unconditional.n_samples=16"]
    return {
        "paper-smoothing": (["--data-dir", "data/cifar10", *quality,
                             "--set", "pixelcnn++.checkpoint=pp-clean.pt",
                             "--set", "smoothed-pixelcnn++.checkpoint=pair.pt"],
                            [("pixelcnn++", "cifar10", "pp-clean.pt", "--set", "sigma_max=0"),
                             ("smoothed-pixelcnn++", "cifar10", "pair.pt")]),
        "paper-pnf-images": (["--data-dir", "data/cifar10", "--budget", "38",
                              "--set", "superres.n_examples=16",
                              "--set", "inpainting.n_examples=16",
                              "--set", "pixelcnn++.checkpoint=pp.pt"],
                             [("pixelcnn++", "cifar10", "pp.pt")]),
        "paper-ardm-cifar10": (["--data-dir", "data/cifar10", "--budget", "50",
                                "--set", "density.max_examples=16",
                                "--set", "oa-ardm.checkpoint=oa.pt",
                                "--set", "upscale-ardm.checkpoint=up4.pt"],
                               [("oa-ardm", "cifar10", "oa.pt"),
                                ("upscale-ardm", "cifar10", "up4.pt", "--set", "branch=4")]),
        "paper-anytime": ([*quality, "--budget", "2,4"],
                          [(model, dataset, f"checkpoints/{model}-{dataset}.pt",
                            *(("--set", "imagefolder.size=64", "--set", "imagefolder.crop=140")
                              if dataset == "imagefolder" else ()))
                           for model in ("ordered-vqvae", "vqvae")
                           for dataset in ("mnist", "cifar10", "imagefolder")]),
    }


def cells_of(run: Path) -> dict[str, Record]:
    """The run's records by key, validated as `arbench compare` reads them."""
    return {record.key: record for record in Store(run).records()}


def agreement(cpu: Path, gpu: Path) -> None:
    """The largest |GPU - CPU| of each metric over the cells both finished."""
    ours, theirs = cells_of(gpu), cells_of(cpu)
    largest: dict[str, float] = {}
    for key, record in ours.items():
        other = theirs.get(key)
        if record.status != "ok" or other is None or other.status != "ok":
            continue
        for metric, entry in record.metrics.items():
            if metric in other.metrics:
                gap = abs(entry.value - other.metrics[metric].value)
                largest[metric] = max(largest.get(metric, 0.0), gap)
    print("CPU/GPU agreement (largest |difference| over shared cells):")
    for metric, gap in sorted(largest.items()):
        print(f"  {metric:>28} {gap:.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--cifar", type=Path, help="the real CIFAR-10 python batches")
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--skip-smoke", action="store_true")
    parser.add_argument("--only", nargs="+", help="paper suites to run (default: all)")
    args = parser.parse_args()
    if not args.skip_cost:
        paper_cost.report(args.device, examples=2, steps=8, cifar=args.cifar)
    work = Path(tempfile.mkdtemp(prefix="arbench-gpu-check-"))
    fake_data(work, args.cifar)
    weights = inception_weights(work)
    print(f"device {args.device}, working folder {work}", flush=True)
    for name, (options, models) in suites(work, weights).items():
        if args.only and name not in args.only:
            continue
        for model in models:
            train(work, *model)
        with GPUMonitor() as monitor:
            started = time.perf_counter()
            arbench("run", "--suite", name, "--device", args.device, *options,
                    "--results-dir", "results", cwd=work)
            seconds = time.perf_counter() - started
        records = cells_of(work / "results" / name).values()
        ok = sum(record.status == "ok" for record in records)
        print(f"{name}: {ok} of {len(records)} cells ok in {seconds:.1f} s "
              f"({len(records) / seconds:.2f} cells/s), {monitor.summary()}", flush=True)
    if args.skip_smoke:
        return
    with GPUMonitor() as monitor:
        started = time.perf_counter()
        arbench("run", "--suite", "smoke", "--device", args.device, "--results-dir",
                str(work / "results"), cwd=REPO)
        seconds = time.perf_counter() - started
    count = len(cells_of(work / "results" / "smoke"))
    print(f"smoke: {count} cells in {seconds:.1f} s ({count / seconds:.2f} cells/s), "
          f"{monitor.summary()}")
    agreement(REPO / "leaderboards" / "smoke", work / "results" / "smoke")
    verdict = arbench("compare", "leaderboards/smoke", str(work / "results" / "smoke"),
                      cwd=REPO)
    print(verdict.stdout.strip().splitlines()[-1] if verdict.stdout.strip() else verdict.stderr)


if __name__ == "__main__":
    main()
