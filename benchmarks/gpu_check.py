"""GPU readiness: reduced paper suites and the smoke suite on one device, with figures.

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

    python benchmarks/gpu_check.py [--device cuda] [--cifar DIR] [--skip-smoke]
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from arbench.record import Record
from arbench.store import Store

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


def arbench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "arbench", *args], cwd=cwd, text=True,
                            capture_output=True)
    if result.returncode not in (0, 1, 3):  # 1: compare found a regression; 3: cells failed
        sys.exit(f"arbench {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def fake_data(work: Path, cifar: Path | None) -> None:
    """data/cifar10, data/mnist and data/celeba in the real formats (random values)."""
    rng = np.random.default_rng(0)
    target = work / "data" / "cifar10"
    if cifar is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(cifar.resolve())
    else:
        target.mkdir(parents=True)
        for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
            batch = {b"labels": rng.integers(0, 10, 32).tolist(),
                     b"data": rng.integers(0, 256, (32, 3072), dtype=np.uint8)}
            (target / name).write_bytes(pickle.dumps(batch, protocol=2))
    mnist = work / "data" / "mnist"
    mnist.mkdir(parents=True)
    for stem, count in (("train", 64), ("t10k", 16)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, count, dtype=np.uint8)
        for kind, array, magic in (("images", images, 3), ("labels", labels, 1)):
            header = bytes([0, 0, 8, magic]) + b"".join(int(s).to_bytes(4, "big")
                                                        for s in array.shape)
            (mnist / f"{stem}-{kind}-idx{magic}-ubyte").write_bytes(header + array.tobytes())
    from PIL import Image

    celeba = work / "data" / "celeba"
    celeba.mkdir(parents=True)
    for k in range(80):
        Image.fromarray(rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)).save(
            celeba / f"{k:06d}.png")


def inception_weights(work: Path) -> Path:
    if os.environ.get("ARBENCH_INCEPTION_WEIGHTS"):
        return Path(os.environ["ARBENCH_INCEPTION_WEIGHTS"])
    from arbench_plugins.metrics.inception_net import FIDInceptionV3

    torch.manual_seed(0)
    net = FIDInceptionV3()
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = work / "inception-random.pth"
    torch.save(net.state_dict(), path)
    return path


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
    parser.add_argument("--skip-smoke", action="store_true")
    parser.add_argument("--only", nargs="+", help="paper suites to run (default: all)")
    args = parser.parse_args()
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
