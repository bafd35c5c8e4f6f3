"""What PnF needs from its prior: super-resolution SNR against the prior's test bits/value.

Trains the WaveNet prior of each embedded source (piano, speech) for increasing
numbers of epochs, runs `arbench run --task superres` with PnF and spline at 4x
and 8x on the test clips with every prior, and prints per (source, prior,
ratio) both SNRs with 95% bootstrap intervals and the paired PnF - spline
difference with its Wilcoxon p: where on the bits/value axis PnF overtakes
spline, if it does. The shipped checkpoint is always one of the priors; more
can be added (e.g. one of ``--set preset=cpu-large``).

    python benchmarks/pnf_prior_quality.py        # 1- and 4-epoch priors + shipped: ~50 min
    python benchmarks/pnf_prior_quality.py --epochs 1 --sources piano --n-examples 8
    python benchmarks/pnf_prior_quality.py --extra piano=big.pt --plot docs/prior-quality.png

Priors are trained into --work and reused on a rerun, as are finished cells.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tabulate import tabulate

from arbench.results.statistics import Measured, difference, estimate
from arbench.results.store import Store
from arbench.training.checkpoints import sidecar
from arbench_plugins.models.wavenet.model import WaveNet

ALPHA = 0.01


def _arbench(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "arbench", *args], check=True)


def _priors(args: argparse.Namespace, source: str) -> list[tuple[str, Path]]:
    """(label, checkpoint) of every prior of `source`: trained, shipped and extra."""
    priors = []
    for epochs in args.epochs:
        path = args.work / "priors" / f"{source}-e{epochs}.pt"
        if not path.exists():
            _arbench("train", "wavenet", "--dataset", source, "--out", str(path),
                     "--set", f"epochs={epochs}")
        priors.append((f"{epochs} epochs", path))
    priors.append(("shipped", WaveNet.checkpoint_path(source)))
    priors += [(path.stem, path) for name, path in args.extra if name == source]
    return priors


def _cells(args: argparse.Namespace, source: str, label: str, checkpoint: Path
           ) -> dict[tuple[str, int], Measured]:
    """SNR of PnF and spline per ratio on `source`'s test clips under one prior."""
    name = f"{source}-{label.replace(' ', '-')}"
    _arbench("run", "--task", "superres", "--sampler", "pnf", "--dataset", source,
             "--budget", str(args.budget), "--sweep",
             f"superres.ratio={','.join(map(str, args.ratios))}",
             "--set", f"superres.n_examples={args.n_examples}",
             "--set", f"{source}.clip_length={args.clip_length}",
             "--set", f"wavenet.checkpoint={checkpoint}",
             "--results-dir", str(args.work / "results"), "--name", name, "-j", str(args.jobs),
             "--device", "cpu")
    found = {}
    for record in Store(args.work / "results" / name).records():
        if record.status == "ok" and record.identity.sampler in ("pnf", "spline"):
            ratio = int(record.configuration.params["superres"]["ratio"])
            found[record.identity.sampler, ratio] = record.metrics["snr_db"].measured()
    return found


def _interval(measured: Measured) -> str:
    e = estimate([measured])
    return f"{e.mean:.2f} [{e.low:.2f}, {e.high:.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=lambda s: [int(v) for v in s.split(",")],
                        default=[1, 4], help="training budgets of the priors trained here")
    parser.add_argument("--sources", type=lambda s: s.split(","), default=["piano", "voice"])
    parser.add_argument("--ratios", type=lambda s: [int(v) for v in s.split(",")],
                        default=[4, 8])
    parser.add_argument("--extra", type=lambda s: (s.split("=")[0], Path(s.split("=", 1)[1])),
                        action="append", default=[], help="SOURCE=CHECKPOINT, repeatable")
    parser.add_argument("--budget", type=int, default=400, help="PnF network calls")
    parser.add_argument("--n-examples", type=int, default=32)
    parser.add_argument("--clip-length", type=int, default=512)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("results/pnf-prior-quality"))
    parser.add_argument("--plot", type=Path, help="write the figure here (png)")
    args = parser.parse_args()

    rows: list[dict[str, Any]] = []
    for source in args.sources:
        for label, checkpoint in _priors(args, source):
            bits = json.loads(sidecar(checkpoint).read_text())["test_bpd"]
            cells = _cells(args, source, label, checkpoint)
            for ratio in args.ratios:
                spline, pnf = cells["spline", ratio], cells["pnf", ratio]
                diff = difference([spline], [pnf])
                verdict = ("tie" if diff.p is None or diff.p >= ALPHA
                           else "PnF" if diff.mean > 0 else "spline")
                rows.append({
                    "source": source, "prior": label, "test bits/value": bits, "ratio": ratio,
                    "spline SNR": _interval(spline), "PnF SNR": _interval(pnf),
                    "PnF - spline": f"{diff.mean:+.2f} [{diff.low:+.2f}, {diff.high:+.2f}]",
                    "p": f"{diff.p:.2g}", "better": verdict,
                    "_spline": estimate([spline]), "_pnf": estimate([pnf]),
                })
    print(f"\nsuper-resolution SNR (dB) on {args.n_examples} test clips of {args.clip_length} "
          f"samples, PnF at {args.budget} network calls; 95% bootstrap intervals; better: "
          f"paired Wilcoxon signed-rank at alpha {ALPHA}")
    print(tabulate([{k: v for k, v in row.items() if not k.startswith("_")} for row in rows],
                   headers="keys", tablefmt="github"))
    if args.plot:
        _plot(rows, args)


def _plot(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.sources), figsize=(5 * len(args.sources), 3.6),
                             squeeze=False)
    for ax, source in zip(axes[0], args.sources, strict=True):
        for ratio, colour in zip(args.ratios, ("C0", "C1", "C2", "C3"), strict=False):
            mine = sorted((r for r in rows if r.source == source and r.ratio == ratio),
                          key=lambda r: -r["test bits/value"])
            bits = [r["test bits/value"] for r in mine]
            pnf = [r._pnf for r in mine]
            ax.errorbar(bits, [e.mean for e in pnf], fmt="o-", color=colour, capsize=3,
                        yerr=[[e.mean - e.low for e in pnf], [e.high - e.mean for e in pnf]],
                        label=f"PnF {ratio}x")
            spline = mine[0]["_spline"]
            ax.axhspan(spline.low, spline.high, color=colour, alpha=0.15)
            ax.axhline(spline.mean, color=colour, ls="--", lw=1, label=f"spline {ratio}x")
        ax.invert_xaxis()
        ax.set(title=source, xlabel="prior test bits/value (better to the right)",
               ylabel="SNR (dB)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.plot, dpi=120)
    print(f"figure: {args.plot}")


if __name__ == "__main__":
    main()
