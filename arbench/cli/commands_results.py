"""`arbench report`, `arbench compare` and `arbench leaderboard`: what happens after runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from arbench.cli.app import (
    Names,
    app,
    console,
    fail,
    option,
    print_out,
    split_names,
    warn_damaged,
)
from arbench.cli.progress import execute
from arbench.results.store import atomic_write


def newest_run(results_dir: Path) -> Path:
    """The run folder under `results_dir` whose cells changed last."""
    runs = [cells.parent for cells in results_dir.glob("*/cells") if cells.is_dir()]
    if not runs:
        fail(f"no runs under {results_dir}/; run `arbench run ...` first or name a run folder")
    return max(runs, key=lambda run: (run / "cells").stat().st_mtime)


@app.command()
def report(
    runs: Annotated[list[Path] | None, typer.Argument(
        help="Run folder(s), merged into one report; default: the newest run.")] = None,
    format_: Annotated[Names, typer.Option(
        "--format", help="Reporters to write, e.g. latex,html (`arbench list reporter`).")] = None,
    html: Annotated[bool, option("Write the self-contained HTML page (same as --format html).")
                    ] = False,
    out: Annotated[Path | None, option("Folder for report files; default: RUN/report.")] = None,
    csv: Annotated[Path | None, option("Write the long-format CSV here.")] = None,
    results_dir: Annotated[Path, option("Where run folders are.")] = Path("results"),
) -> None:
    """Print the markdown tables of one or more runs, and write the asked-for formats."""
    from arbench import api
    from arbench.errors import ArbenchError
    from arbench.report.build import markdown_report

    run_dirs = list(runs or [newest_run(results_dir)])
    names = list(dict.fromkeys(split_names(format_) + (["html"] if html else [])))
    default = (run_dirs[0] / "report" if len(run_dirs) == 1 else
               results_dir / ("report-" + "+".join(run.name for run in run_dirs)))
    try:
        records, damaged = api.read_records(run_dirs)
        warn_damaged(damaged, "left out of the report (rerun arbench run to recompute them)")
        for name in names:  # an unknown format fails before anything is written
            _known_reporter(name)
        built = api.report(run_dirs, records)
        print_out(markdown_report(built))
        if csv is not None:
            atomic_write(csv, lambda path: built.tidy().to_csv(path, index=False))
        for name, paths in api.write_report(built, names, out or default).items():
            more = f" (+{len(paths) - 1} more files)" if len(paths) > 1 else ""
            console.print(f"{name}: wrote {paths[0] if paths else 'nothing'}{more}",
                          highlight=False)
    except ArbenchError as error:
        fail(str(error))
    except OSError as error:  # a full disk or an unwritable folder: no partial files
        fail(f"cannot write the report ({error.strerror or error}: "
             f"{error.filename or out or default}); free space or give another --out / --csv "
             "(the run's records are untouched)")


def _known_reporter(reporter: str) -> None:
    """An unknown reporter name is an error before any file is written."""
    from arbench.plugin.registry import registry

    registry().get("reporter", reporter)


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
    from arbench import api
    from arbench.errors import ArbenchError

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
    readme: Annotated[Path, option("README whose leaderboard block to refresh.")] = Path(
        "README.md"),
) -> None:
    """Render a leaderboard's README.md from its committed cells (--rerun: recompute them)."""
    from arbench import api
    from arbench.errors import ArbenchError
    from arbench.run.suite import find_suite, load_suite

    try:
        suite = load_suite(find_suite(name))
        removed = []
        if rerun:
            execute(suite.grids, suite.folder.name, suite.folder.parent, force=True,
                    suite_path=suite.path)
            removed = api.remove_stale_cells(suite)
        written = api.leaderboard(suite, readme)
    except ArbenchError as error:
        fail(f"{error}; `arbench leaderboard {name} --rerun` computes it")
    for path in removed:
        console.print(f"removed {path} (no longer in the suite)", highlight=False)
    for path in written:
        console.print(f"wrote {path}", highlight=False)
