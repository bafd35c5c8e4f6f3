"""What arbench's own machinery costs next to the models, measured side by side in one run.

1. Start-up: ``arbench --help`` and ``arbench list`` in fresh interpreters (best of
   `--repeats`), and whether either imported torch (neither should).
2. Runner overhead: `--cells` small cells (2-D density, the true density scoring
   5,000 points and a density grid) through `Runner.run`, which seeds, builds
   records and writes each one atomically with fsync, vs the same cells' task
   work alone in a bare loop; printed per cell and as a fraction of the work.

    python benchmarks/overhead.py [--cells 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import best_of

PROBE = ("import sys, runpy; sys.argv = ['arbench', {args}]\n"
         "try: runpy.run_module('arbench', run_name='__main__')\n"
         "except SystemExit: pass\n"
         "print('torch imported:', 'torch' in sys.modules, file=sys.stderr)")


def start_up(args: list[str]) -> tuple[float, str]:
    """Seconds for `arbench ARGS` in a fresh interpreter, and its torch-import line."""
    code = PROBE.format(args=", ".join(repr(a) for a in args))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return time.perf_counter() - start, done.stderr.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for command in (["--help"], ["list"]):
        seconds = min(start_up(command)[0] for _ in range(args.repeats))
        print(f"arbench {' '.join(command):7s} {seconds:6.3f} s  ({start_up(command)[1]})")

    from arbench.plugin.registry import registry
    from arbench.results.store import Store
    from arbench.run.grid import GridSpec
    from arbench.run.plan import plan
    from arbench.run.provenance import take
    from arbench.run.runner import Runner

    grid = GridSpec(tasks=["density"], datasets=["rings"], models=["true-density"],
                    seeds=list(range(args.cells)))
    cells = take(plan([grid], registry()), registry())
    with tempfile.TemporaryDirectory() as scratch:
        runner = Runner(registry(), Store(Path(scratch) / "warm-up"), "cpu", "bench")
        runner.run(cells[:1])  # load the dataset once: both loops then find it cached

        def through_runner() -> None:
            runner.store = Store(Path(scratch) / f"run{time.perf_counter_ns()}")
            runner.run(cells)

        def bare_loop() -> None:
            for cell in cells:
                runner._run_task(cell)

        with_runner = best_of(through_runner, args.repeats)
        bare = best_of(bare_loop, args.repeats)
    per_cell = 1000 * (with_runner - bare) / len(cells)
    print(f"{len(cells)} cells: runner {with_runner:.3f} s, bare loop {bare:.3f} s, overhead "
          f"{per_cell:.2f} ms per cell = {100 * (with_runner - bare) / bare:.1f}% of the work")


if __name__ == "__main__":
    main()
