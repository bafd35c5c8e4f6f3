"""How sensitive is the smoke gate? Inject known regressions into code, rerun the smoke
cells they touch, and see whether `arbench compare`'s rule flags them; then count false
alarms over unchanged reruns.

Each injection edits one line of a copy of the plugin (or core) source in a temporary
folder that shadows the installed packages on PYTHONPATH: code changes, configuration
does not, so the cells keep their keys and are compared with the committed leaderboard
exactly as a pull request's would be. The unchanged rerun is the whole smoke suite with
`-j 2` (two worker processes of one torch thread each) against the leaderboard made
in-process with two threads: 1 vs 2 threads and local vs -j 2 at once.

    python benchmarks/gate_sensitivity.py                  # everything (~20 min on 2 cores)
    python benchmarks/gate_sensitivity.py --only "PnF step size halved" --no-false-alarms

Prints one row per (injection, cell, metric): the measured effect (current - baseline)
with its 95% interval, p, the minimum effect and the verdict; a line per injection
says whether it was flagged, and the last lines check the rule: every injected effect
whose whole interval lies beyond its minimum effect is flagged, and no unchanged rerun is.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

REPO = Path(__file__).resolve().parent.parent
SUITE = REPO / "leaderboards" / "smoke"


@dataclass(frozen=True)
class Injection:
    name: str
    edits: tuple[tuple[str, str, str], ...]  # (file under the repository, old, new)
    cells: Callable[[object], bool]  # which smoke cells it touches (by the Cell)


def _pnf_audio_and_digits(cell) -> bool:
    """Piano super-resolution (64 calls, the smoke suite's only audio budget) and digits
    inpainting at 400 calls."""
    return cell.sampler == "pnf" and (cell.task, cell.dataset, cell.budget) in {
        ("superres", "piano", 64), ("inpainting", "digits", 400)}


INJECTIONS = [
    Injection("PnF step size halved", (
        ("plugins/samplers/pnf.py", "eta = self.params.delta * sigma**2",
         "eta = 0.5 * self.params.delta * sigma**2"),), _pnf_audio_and_digits),
    Injection("PnF: a quarter fewer Langevin steps per level", (
        ("plugins/samplers/pnf.py",
         "steps = self.steps_per_level(budget, len(schedule), len(priors))",
         "steps = self.steps_per_level(budget, len(schedule), len(priors)) * 3 // 4"),),
        _pnf_audio_and_digits),
    Injection("ancestral sampling at temperature 1.05", (
        ("arbench/plugin/capabilities.py", "probs = torch.softmax(self.logits(x)[:, i], dim=-1)",
         "probs = torch.softmax(self.logits(x)[:, i] / 1.05, dim=-1)"),
        ("plugins/samplers/ancestral.py",
         "draw_levels(cache.logits(previous), uniforms[:, i])",
         "draw_levels(cache.logits(previous) / 1.05, uniforms[:, i])"),
        ("plugins/samplers/ancestral.py",
         "draw_levels(model.logits(x.view(n, *dataset.shape))[:, i], uniforms[:, i])",
         "draw_levels(model.logits(x.view(n, *dataset.shape))[:, i] / 1.05, uniforms[:, i])")),
        lambda c: c.sampler == "ancestral" and c.task == "unconditional"),
    Injection("ARDM: the DP plan replaced by the naive one", (
        ("plugins/samplers/ardm.py",
         "sizes = optimal_groups(losses.reshape(-1), budget, per_stage)",
         "sizes = naive_groups(total, budget, per_stage)"),),
        lambda c: c.sampler in ("ardm", "ardm-upscale") and "policy=dp" in c.variant
        and c.task == "density"),
    Injection("anytime: one code fewer decoded", (
        ("plugins/samplers/anytime.py", "return min(budget, num_codes)",
         "return max(1, min(budget, num_codes) - 1)"),),
        lambda c: c.sampler == "anytime" and c.budget is not None and c.budget < 16),
    Injection("ancestral scoring spends twice the network calls", (
        ("plugins/samplers/ancestral.py",
         "return LikelihoodOutput(nll_nats=nll, nfe=1)",
         "nll = torch.cat([-causal.log_prob(chunk) for chunk in x.split(NLL_BATCH)])\n"
         "        return LikelihoodOutput(nll_nats=nll, nfe=2)"),),
        lambda c: c.sampler == "ancestral" and c.task == "density" and c.dataset == "digits"),
    # arbench counts the calls: the sampler's report no longer decides the NFE
    Injection("ancestral sampling calls the model twice per value, reports D", (
        ("plugins/samplers/ancestral.py",
         "x[:, i] = previous = draw_levels(cache.logits(previous), uniforms[:, i])",
         "x[:, i] = previous = draw_levels(cache.logits(previous), uniforms[:, i])\n"
         "            causal.logits(x.view(n, *dataset.shape))"),),
        lambda c: c.sampler == "ancestral" and c.task == "unconditional"),
    # a NaN among the per-example values once hid a regression: the cell must fail
    Injection("one NaN among the per-example bits/dim", (
        ("plugins/metrics/likelihood.py",
         "return nll_nats.double() / (dims * math.log(2))",
         "values = nll_nats.double() / (dims * math.log(2))\n"
         "        return values.index_fill(0, torch.tensor([0]), float('nan'))"),),
        lambda c: c.task == "density" and c.dataset == "digits"
        and c.sampler == "ancestral"),
]


def shadow_tree(injection: Injection, root: Path) -> Path:
    """Copies of arbench and of plugins/ (as the package arbench_plugins, its import name)
    under `root`, with the injection applied."""
    shutil.copytree(REPO / "arbench", root / "arbench")
    shutil.copytree(REPO / "plugins", root / "arbench_plugins")
    for file, old, new in injection.edits:
        target = root / (f"arbench_{file}" if file.startswith("plugins/") else file)
        source = target.read_text()
        if source.count(old) != 1:
            raise SystemExit(f"{injection.name}: '{old}' is not exactly once in {file}")
        target.write_text(source.replace(old, new))
    return root


def run_cells(index: int, results: Path) -> None:
    """Worker: run the smoke cells injection `index` touches (in this, shadowed, process)."""
    from arbench.plugin.registry import registry
    from arbench.results.store import Store
    from arbench.run.plan import plan
    from arbench.run.provenance import take
    from arbench.run.runner import Runner
    from arbench.run.suite import load_suite

    suite = load_suite(SUITE / "suite.yaml")
    cells = [c for c in take(plan(suite.grids, registry()), registry())
             if INJECTIONS[index].cells(c) and c.skip_reason is None]
    runner = Runner(registry(), Store(results), "cpu", "gate-sensitivity")
    for cell in cells:
        print(f"  {cell.label()}", flush=True)
        runner.run_one(cell)


def _gate():
    from arbench.run.suite import gate, load_suite

    suite = load_suite(SUITE / "suite.yaml")
    return gate([], None, suite.min_effects, suite.alpha)


def _rows(name: str, comparison) -> list[list[str]]:
    rows = []
    for change in comparison.changes:
        d = change.difference
        interval = "-" if d.low is None else f"[{d.low:+.3f}, {d.high:+.3f}]"
        rows.append([name, change.cell, change.metric, f"{d.mean:+.3f}", interval,
                     "-" if d.p is None else f"{d.p:.2g}", str(change.min_effect),
                     change.verdict])
    for nfe in comparison.nfe:
        verdict = "regressed" if nfe.current > nfe.baseline else "fewer calls"
        rows.append([name, nfe.cell, "NFE", f"{nfe.current - nfe.baseline:+d}", "-", "-",
                     "any increase", verdict])
    for cell, reason in comparison.now_failing:
        rows.append([name, cell, "(cell)", "-", "-", "-", "-", f"now {reason[:90]}"])
    return rows


def _clearly_beyond(change) -> bool:
    """The whole interval of the effect lies beyond the minimum effect, in the worse
    direction: a regression the gate must flag."""
    d, allowed = change.difference, change.min_effect.allowed(change.baseline)
    if d.low is None:
        return change.worse_by > allowed
    worse = (d.low, d.high) if change.direction == "lower" else (-d.high, -d.low)
    return worse[0] > allowed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", help="run only these injections (by name)")
    parser.add_argument("--no-false-alarms", action="store_true",
                        help="skip the unchanged -j 2 rerun of the whole suite")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--results", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        return run_cells(args.worker, args.results)

    from arbench.results.compare import compare_records
    from arbench.results.store import Store

    effects, alpha = _gate()
    baseline = {r.key: r for r in Store(SUITE).records()}
    rows, verdicts, misses = [], [], []
    for index, injection in enumerate(INJECTIONS):
        if args.only and injection.name not in args.only:
            continue
        print(f"{injection.name}:", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            root = shadow_tree(injection, Path(tmp) / "src")
            results = Path(tmp) / "results"
            env = {**os.environ, "PYTHONPATH": str(root)}
            subprocess.run([sys.executable, __file__, "--worker", str(index), "--results",
                            str(results)], env=env, check=True)
            current = list(Store(results).records())
        before = [baseline[r.key] for r in current]
        comparison = compare_records(before, current, effects, alpha)
        rows += _rows(injection.name, comparison)
        for row in _rows(injection.name, comparison):  # as it goes: a later failure keeps it
            print("  | " + " | ".join(row) + " |", flush=True)
        flagged = comparison.exit_code == 1
        verdicts.append([injection.name, len(current), "yes" if flagged else "NO"])
        misses += [f"{injection.name}: {c.cell} {c.metric}" for c in comparison.changes
                   if _clearly_beyond(c) and c.verdict != "regressed"]
    print("\n" + tabulate(rows, headers=["injected regression", "cell", "metric", "effect",
                                          "95% interval", "p", "min effect", "verdict"],
                          tablefmt="github", disable_numparse=True))
    print("\n" + tabulate(verdicts, headers=["injected regression", "cells rerun", "flagged"],
                          tablefmt="github"))
    print(f"\neffects clearly beyond their minimum effect but not flagged: {len(misses)}")
    for miss in misses:
        print(f"  {miss}")
    if not args.no_false_alarms:
        false_alarms(baseline, effects, alpha)


def false_alarms(baseline: dict, effects, alpha: float) -> None:
    from arbench.results.compare import compare_records
    from arbench.results.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["arbench", "run", "--suite", str(SUITE / "suite.yaml"), "-j", "2",
                        "--results-dir", tmp, "--name", "rerun"], check=True,
                       stdout=subprocess.DEVNULL)
        current = list(Store(Path(tmp) / "rerun").records())
    comparison = compare_records(list(baseline.values()), current, effects, alpha)
    moved = [c for c in comparison.changes if c.current != c.baseline]
    print(f"\nunchanged rerun (-j 2: 1 thread per worker) vs the leaderboard (2 threads, "
          f"in-process): {len(comparison.changes)} metrics, {len(moved)} moved at all, "
          f"{len(comparison.of('regressed'))} regressed, {len(comparison.of('improved'))} "
          f"improved, {len(comparison.more_calls)} with more calls; false alarm: "
          f"{'YES' if comparison.exit_code == 1 else 'no'} (exit {comparison.exit_code})")
    for change in moved:
        print(f"  moved: {change.cell} {change.metric} {change.baseline:.4f} -> "
              f"{change.current:.4f} (p={change.difference.p})")


if __name__ == "__main__":
    main()
