"""`arbench report`, `arbench compare` and `arbench leaderboard`: what happens after runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from arbench import api
from arbench.cli.app import Names, app, console, fail, option, print_out, split_names, warn_damaged
from arbench.cli.progress import Progress
from arbench.errors import ArbenchError


@app.command()
def report(
    runs: Annotated[list[Path] | None, typer.Argument(
        help="Run folder(s), merged into one report; default: the newest run.")] = None,
    format_: Annotated[Names, typer.Option(
        "--format", help="Reporters to write, e.g. latex,html (`arbench list reporter`).")] = None,
    out: Annotated[Path | None, option("Folder for report files; default: RUN/report.")] = None,
    csv: Annotated[Path | None, option("Write the long-format CSV here.")] = None,
    results_dir: Annotated[Path, option("Where run folders are.")] = Path("results"),
) -> None:
    """Print the markdown tables of one or more runs, and write the asked-for formats."""
    try:
        run_dirs = list(runs or [api.newest_run(results_dir)])
        reported = api.report(run_dirs, split_names(format_), out, csv)
    except ArbenchError as error:
        fail(str(error))
    warn_damaged(reported.damaged, "left out of the report (rerun arbench run to recompute them)")
    if reported.migrated:
        console.print(f"[yellow]{len(reported.migrated)} record(s) written by an older arbench "
                      "(record schema 1) were read by migration[/]; `arbench run` of the same "
                      "grid rewrites them", highlight=False)
    print_out(reported.markdown)
    warn_damaged(reported.damaged_artifacts, "left out of the report's figures",
                 "artifact(s)")
    for name, paths in reported.written.items():
        more = f" (+{len(paths) - 1} more files)" if len(paths) > 1 else ""
        console.print(f"{name}: wrote {paths[0] if paths else 'nothing'}{more}",
                      highlight=False)


@app.command()
def compare(
    baseline: Annotated[Path, typer.Argument(help="Run folder with the reference results.")],
    current: Annotated[Path, typer.Argument(help="Run folder with the results to check.")],
    min_effect: Annotated[Names, typer.Option(
        help="METRIC=0.5 (absolute) or METRIC=2% (relative): the smallest change that "
             "matters; METRIC may be 'default'.")] = None,
    alpha: Annotated[float | None, option(
        "Significance level of the tests; default: the suite's alpha, else 0.01.")] = None,
    suite: Annotated[Path | None, option(
        "Suite file to take minimum effects from; default: BASELINE/suite.yaml if present.")
    ] = None,
    out: Annotated[Path | None, option("Also write the markdown diff here.")] = None,
) -> None:
    """Exit 0 if nothing regressed, 1 on a regression, 2 if the runs cannot be compared."""
    try:
        result = api.compare(baseline, current, suite, split_names(min_effect), alpha)
    except ArbenchError as error:
        fail(str(error))
    except Exception as error:  # an unreadable record is "cannot compare", never exit 1
        fail(f"{type(error).__name__}: {error}")
    text = result.markdown()
    print_out(text)
    if out is not None:
        out.write_text(text)
    raise typer.Exit(result.exit_code)


@app.command()
def leaderboard(
    name: Annotated[str, typer.Argument(help="Suite name (e.g. smoke) or its suite.yaml.")],
    rerun: Annotated[bool, option("Recompute every cell first, then render.")] = False,
    readme: Annotated[Path, option("Page whose block of this leaderboard's tables to refresh.")
                      ] = Path("leaderboards/README.md"),
) -> None:
    """Render a leaderboard's README.md from its committed cells (--rerun: recompute them)."""
    progress = Progress()
    try:
        with progress.shown():
            _, removed, written = api.leaderboard(name, readme, rerun=rerun,
                                                  on_start=progress.started,
                                                  on_record=progress.done)
    except ArbenchError as error:
        fail(str(error))
    for path in removed:
        console.print(f"removed {path} (no longer in the suite)", highlight=False)
    for path in written:
        console.print(f"wrote {path}", highlight=False)
