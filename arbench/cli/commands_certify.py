"""`arbench certify`: the chi-square certificates of the samplers that claim exactness."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from arbench import api
from arbench.cli.app import app, console, fail, option, print_out, split_names
from arbench.errors import ArbenchError


@app.command()
def certify(
    samplers: Annotated[list[str] | None, typer.Argument(
        help="Samplers to certify; default: every registered one that claims exactness.")
    ] = None,
    samples: Annotated[int, option("Samples drawn on each enumerable model.")] = 20_000,
    alpha: Annotated[float, option("Level of the chi-square test: a claim passes at p >= "
                                   "alpha.")] = 1e-3,
    seed: Annotated[int, option("Seed of the draws.")] = 0,
    results_dir: Annotated[Path, option(
        "Where certificates are stored (RESULTS_DIR/certificates, keyed by the sampler's "
        "code hash; reports of runs in RESULTS_DIR show them).")] = Path("results"),
) -> None:
    """Exit 0 if every claim passes, 1 if one fails, 2 if one cannot run."""
    from tabulate import tabulate

    try:
        done = api.certify(split_names(samplers), results_dir, samples=samples, alpha=alpha,
                           seed=seed, on_record=lambda record: console.print(
                               f"tested {record.sampler}", highlight=False))
    except ArbenchError as error:
        fail(str(error))
    rows = [[record.sampler, record.claim, verdict.model,
             "-" if verdict.statistic is None else f"{verdict.statistic:,.1f}",
             "-" if verdict.dof is None else str(verdict.dof),
             "-" if verdict.p_value is None else f"{verdict.p_value:.3g}",
             "n/a: " + (verdict.reason or "") if verdict.passed is None
             else "pass" if verdict.passed else "FAIL"]
            for record in done.records for verdict in record.verdicts]
    print_out(f"chi-square against the exact distribution of 4 values of 3 levels, "
              f"{samples:,} samples per model, alpha {alpha:g}\n")
    print_out(tabulate(rows, headers=["sampler", "claims", "model", "chi-square", "dof", "p",
                                      "verdict"], tablefmt="github", disable_numparse=True))
    for path in done.paths:
        console.print(f"wrote {path}", highlight=False)
    raise typer.Exit(done.exit_code)
