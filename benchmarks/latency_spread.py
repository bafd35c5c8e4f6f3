"""The latency suite run several times in a row: how far its speed-ups move between runs.

Each run is `arbench run --suite latency` into a fresh results folder (nothing reused),
its speed-ups read from `arbench report --csv` (one ``speedup`` row per cell, each the
mean over rounds of the reference's time over the sampler's, timed in turn call by
call). For every speculative cell it prints each run's speed-up and the largest
deviation from the runs' mean, in percent: the goal of issue 46 is within +-10% on a
quiet machine; then each run's share of the bound its draft and target calls allow
(``bound_share``, `arbench.results.speed`). About 5 minutes a run on 2 cores.

    python benchmarks/latency_spread.py [--runs 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import pandas as pd

CELL = ["dataset", "model", "variant"]


def run_suite(folder: Path) -> pd.DataFrame:
    """One run of the latency suite into `folder`; its speed-ups and shares of the bound,
    a column each, by cell."""
    subprocess.run(["arbench", "run", "--suite", "latency", "--results-dir", str(folder)],
                   check=True, stdout=subprocess.DEVNULL)
    csv = folder / "long.csv"
    subprocess.run(["arbench", "report", "--results-dir", str(folder), "--csv", str(csv),
                    "--out", str(folder / "report")], check=True, stdout=subprocess.DEVNULL)
    rows = pd.read_csv(csv, keep_default_na=False)
    rows = rows[rows.metric.isin(["speedup", "bound_share"]) & (rows.sampler != "ancestral")]
    return rows.pivot_table(index=CELL, columns="metric", values="value")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the run folders here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        base = args.keep or Path(scratch)
        runs = []
        for index in range(args.runs):
            print(f"run {index + 1} of {args.runs} ...", flush=True)
            runs.append(run_suite(base / f"run{index + 1}"))
    speedups = pd.concat([run["speedup"].rename(f"run {i + 1}") for i, run in enumerate(runs)],
                         axis=1)
    mean = speedups.mean(axis=1)
    speedups["spread %"] = (speedups.sub(mean, axis=0).abs().max(axis=1) / mean * 100).round(1)
    print(speedups.round(3).to_string())
    print(f"largest deviation from a cell's mean: {speedups['spread %'].max():.1f}%")
    shares = pd.concat([run.get("bound_share", pd.Series(dtype=float)).rename(f"run {i + 1}")
                        for i, run in enumerate(runs)], axis=1).dropna(how="all")
    print("share of the bound reached:")
    print(shares.round(2).to_string())


if __name__ == "__main__":
    main()
