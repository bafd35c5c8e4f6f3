"""Grid speed with one cell at a time vs several worker processes, side by side in one run.

Runs the same suite (default: smoke) from scratch with ``-j 1`` and with each
``-j N`` asked for, through the CLI a user runs, into throw-away results
folders, and prints each wall time and its speed-up over ``-j 1``. It also
checks that every run wrote the same cells with the same metrics (a speed-up
that changed the numbers would be no speed-up). On the 2-core machine this
project is developed on, ``-j 2`` gives each worker one torch thread.

    python benchmarks/parallel_speed.py [--suite smoke] [--jobs 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from arbench.results.store import Store


def run_suite(suite: str, jobs: int, results: Path) -> float:
    """Seconds for `arbench run --suite SUITE -j JOBS` into `results`."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "arbench", "run", "--suite", suite, "-j", str(jobs),
                    "--results-dir", str(results)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def outcome(run_dir: Path) -> dict[str, tuple]:
    return {record.key: (record.status, {name: round(entry.value, 6)
                                         for name, entry in record.metrics.items()})
            for record in Store(run_dir).records()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="smoke")
    parser.add_argument("--jobs", type=int, nargs="+", default=[2])
    args = parser.parse_args()
    rows, outcomes = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        for jobs in [1, *args.jobs]:
            results = Path(scratch) / f"j{jobs}"
            seconds = run_suite(args.suite, jobs, results)
            outcomes[jobs] = outcome(next(results.iterdir()))
            rows.append((jobs, seconds))
            print(f"-j {jobs}: {seconds:7.1f} s  speed-up {rows[0][1] / seconds:4.2f}x",
                  flush=True)
    cells = len(outcomes[1])
    same = {jobs: sum(outcomes[jobs].get(key) == value for key, value in outcomes[1].items())
            for jobs in outcomes}
    for jobs, matching in same.items():
        print(f"-j {jobs}: {matching}/{cells} cells with the same status and metrics as -j 1")


if __name__ == "__main__":
    main()
