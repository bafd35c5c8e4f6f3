"""What each paper table costs: training and sampling measured on one device, projected.

Training: each image recipe at its paper preset trains for a few steps on tiny CIFAR-10
files in the real format (`arbench train --device D`, the code path a user runs); its
sidecar gives the loop's examples per second after a warm-up step, and its peak memory.
Sampling: each paper suite runs reduced (a few examples, a small budget) on those
checkpoints (`arbench run --device D`); its records give the sampler's own seconds per
network call per example. Projected hours: training, the recipe's whole preset schedule
(its epochs or steps, read from the recipe) at the measured rate; whether that schedule
reaches the paper's bits/dim is not known (the papers do not give one). Sampling, the
suite's grid (examples x network calls) at the measured time per call, scaled linearly
from the reduced batch: an upper bound where a GPU batches sublinearly. The weights are
barely trained; cost does not depend on them. paper-anytime (small VQ-VAEs without a
paper preset) is left out.

    python benchmarks/paper_cost.py [--device cuda] [--examples 2] [--steps 8]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

from paper_files import arbench, fake_data, inception_weights
from tabulate import tabulate

from arbench.results.store import Store
from arbench.training.checkpoints import training_options
from arbench_plugins.models.ardm import model as ardm
from arbench_plugins.models.pixelcnnpp import model as pixelcnnpp
from arbench_plugins.models.pixelcnnpp import smoothed_pair

Cell = tuple[str, str]  # (task, sampler)
TRAIN_IMAGES = 45_000  # CIFAR-10's train split less arbench's 10% validation
ARDM_SHORT = ["component_steps=2", "component_repeats=1"]
RECIPES: dict[str, tuple[str, list[str], Any]] = {  # name: (model, short-run options, module)
    "pp.pt": ("pixelcnn++", [], pixelcnnpp),
    "pp-clean.pt": ("pixelcnn++", ["sigma_max=0"], pixelcnnpp),
    "pair.pt": ("smoothed-pixelcnn++", ["val_max=16"], smoothed_pair),
    "oa.pt": ("oa-ardm", ARDM_SHORT, ardm),
    "up4.pt": ("upscale-ardm", [*ARDM_SHORT, "branch=4"], ardm),
}
TABLES: dict[str, dict[str, Any]] = {  # suite: checkpoints, run options, the paper's grid
    "paper-pnf-images": {
        "train": ["pp.pt"], "run": ["--set", "pixelcnn++.checkpoint=pp.pt", "--set",
                                    "pnf.levels=2", "--budget", "4"],
        "examples": ["superres.n_examples", "inpainting.n_examples", "separation.n_examples"],
        "grid": [("superres", "pnf", 64, 5700), ("inpainting", "pnf", 64, 5700),
                 ("separation", "pnf", 64, 11400)]},
    "paper-smoothing": {
        "train": ["pp-clean.pt", "pair.pt"],
        "run": ["--set", "pixelcnn++.checkpoint=pp-clean.pt", "--set",
                "smoothed-pixelcnn++.checkpoint=pair.pt"],
        "examples": ["unconditional.n_samples"],
        "grid": [("unconditional", "ancestral", 50_000, None),
                 ("unconditional", "smoothing-single-step", 50_000, None),
                 ("unconditional", "smoothing-two-step", 50_000, None)]},
    "paper-ardm-cifar10": {
        "train": ["oa.pt", "up4.pt"],
        "run": ["--set", "oa-ardm.checkpoint=oa.pt", "--set", "upscale-ardm.checkpoint=up4.pt",
                "--budget", "8"],
        "examples": ["density.max_examples"],
        "grid": [("density", "ardm", 10_000, 3072), ("density", "ardm", 10_000, 50),
                 ("density", "ardm-upscale", 10_000, 12288)]},
}


def schedule_examples(module: Any) -> int:
    """The examples the recipe's paper preset trains on: its epochs or steps x batch."""
    opts = training_options({"preset": "cifar10"}, module.TRAIN_DEFAULTS, module.PRESETS)
    if "epochs" in opts and "steps" not in opts:
        return int(opts["epochs"]) * TRAIN_IMAGES
    return int(opts["steps"]) * int(opts["batch_size"])


def train_all(work: Path, device: str, steps: int) -> dict[str, dict[str, Any]]:
    """Each recipe for a few steps at its paper preset: its sidecar's training figures."""
    measured = {}
    for out, (model, options, module) in RECIPES.items():
        short = ["epochs=1"] if module is pixelcnnpp else [f"steps={steps}",
                                                           f"eval_every={steps}"]
        if not (work / out).with_suffix(".json").exists():  # a rerun in --work reuses it
            arbench("train", model, "--dataset", "cifar10", "--data-dir", "data/cifar10",
                    "--device", device, "--out", out, "--set", "preset=cifar10",
                    *(arg for option in [*options, *short] for arg in ("--set", option)),
                    cwd=work)
        sidecar = json.loads((work / out).with_suffix(".json").read_text())
        measured[out] = {**sidecar["training"], "model": model,
                         "schedule": schedule_examples(module)}
        print(f"trained {out}: {measured[out]['examples_per_second']} ex/s, peak "
              f"{measured[out]['peak_memory_mib']:.0f} MiB", flush=True)
    return measured


def sample_all(work: Path, device: str, examples: int) -> dict[str, dict[Cell, tuple[float, int]]]:
    """Each suite reduced: (seconds per network call per example, calls) by (task,
    sampler). FID and IS run on random Inception weights (`inception_weights`): the
    smoothing samplers need a metric to run, and their cost is not the sampler's."""
    weights = inception_weights(work)
    per_call: dict[str, dict[Cell, tuple[float, int]]] = {}
    for suite, table in TABLES.items():
        sizes = [arg for key in table["examples"] for arg in ("--set", f"{key}={examples}")]
        arbench("run", "--suite", suite, "--data-dir", "data/cifar10", "--device", device,
                "--set", f"unconditional.inception_weights={weights}", *table["run"], *sizes,
                "--timing-repeats", "1", "--results-dir", "results", cwd=work)
        per_call[suite] = {(record.identity.task, record.identity.sampler): (
            1 / (record.cost.examples_per_s * record.cost.nfe), record.cost.nfe)
            for record in Store(work / "results" / suite).records()
            if record.status == "ok" and record.cost.nfe and record.cost.examples_per_s}
    return per_call


def projection(trained: dict[str, dict[str, Any]],
               per_call: dict[str, dict[Cell, tuple[float, int]]]) -> list[list[Any]]:
    """One row per paper table: measured rates and projected hours."""
    rows = []
    for suite, table in TABLES.items():
        train_hours = sum(trained[out]["schedule"] / trained[out]["examples_per_second"]
                          for out in table["train"]) / 3600
        sample_hours = 0.0
        for task, sampler, n, budget in table["grid"]:
            seconds, measured_calls = per_call[suite].get((task, sampler), (math.nan, 0))
            sample_hours += n * (budget or measured_calls) * seconds / 3600
        rates = ", ".join(f"{trained[out]['model']} {trained[out]['examples_per_second']:.3g}"
                          for out in table["train"])
        peak = max(trained[out]["peak_memory_mib"] for out in table["train"])
        rows.append([suite, rates, f"{peak / 1024:.1f}", f"{train_hours:,.0f}",
                     f"{sample_hours:,.0f}", f"{train_hours + sample_hours:,.0f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--examples", type=int, default=2, help="examples per reduced cell")
    parser.add_argument("--steps", type=int, default=8, help="training steps per recipe")
    parser.add_argument("--cifar", type=Path, help="the real CIFAR-10 python batches")
    parser.add_argument("--work", type=Path, help="a working folder of an earlier run: its "
                                                  "checkpoints are reused, sampling rerun")
    args = parser.parse_args()
    report(args.device, args.examples, args.steps, args.cifar, args.work)


def report(device: str, examples: int, steps: int, cifar: Path | None = None,
           work: Path | None = None) -> None:
    """Measure on `device` and print the projected-hours table."""
    if work is None:
        work = Path(tempfile.mkdtemp(prefix="arbench-paper-cost-"))
        fake_data(work, cifar)
    shutil.rmtree(work / "results", ignore_errors=True)
    print(f"device {device}, working folder {work}", flush=True)
    trained = train_all(work, device, steps)
    per_call = sample_all(work, device, examples)
    unit = "GPU" if device.startswith("cuda") else "CPU (measured on this CPU, not a GPU)"
    print(f"\nProjected {unit} hours per paper table (training: the recipes' preset "
          "schedules at the measured rate; sampling: the paper grid at the measured time "
          "per network call, linear in batch)")
    print(tabulate(projection(trained, per_call),
                   headers=["paper table", "training ex/s", "peak GiB", "train h",
                            "sample h", "total h"], tablefmt="github", disable_numparse=True))


if __name__ == "__main__":
    main()
