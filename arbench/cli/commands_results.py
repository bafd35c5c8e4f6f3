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
    layouts,
    option,
    print_out,
    split_names,
    warn_damaged,
)
from arbench.store import Store, atomic_write


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
    from arbench.registry import PluginError, registry
    from arbench.report import build_report, markdown_report
    from arbench.store import Store, StoreError

    run_dirs = list(runs or [newest_run(results_dir)])
    try:
        stores = [Store(run_dir) for run_dir in run_dirs]
        records = [record for store in stores for record in store.records()]
        warn_damaged({p: r for store in stores for p, r in store.damaged.items()},
                     "left out of the report (rerun arbench run to recompute them)")
        names = list(dict.fromkeys(split_names(format_) + (["html"] if html else [])))
        reporters = [registry().get("reporter", name).load()() for name in names]
    except (StoreError, PluginError) as error:
        fail(str(error))
    built = build_report(records, layouts(), run_dirs)
    print_out(markdown_report(built))
    default = (run_dirs[0] / "report" if len(run_dirs) == 1 else
               results_dir / ("report-" + "+".join(run.name for run in run_dirs)))
    folder = out or default
    try:
        if csv is not None:
            atomic_write(csv, lambda path: built.tidy().to_csv(path, index=False))
        if reporters:
            if folder.exists() and not folder.is_dir():
                fail(f"--out {folder} is a file; give a folder for the report files")
            folder.mkdir(parents=True, exist_ok=True)
        for name, reporter in zip(names, reporters, strict=True):
            paths = reporter.write(built, folder)
            more = f" (+{len(paths) - 1} more files)" if len(paths) > 1 else ""
            console.print(f"{name}: wrote {paths[0] if paths else 'nothing'}{more}",
                          highlight=False)
    except OSError as error:  # a full disk or an unwritable folder: no partial files
        fail(f"cannot write the report ({error.strerror or error}: "
             f"{error.filename or folder}); free space or give another --out / --csv "
             "(the run's records are untouched)")


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
    from arbench.compare import compare_records, gate_of

    try:
        stores = Store(baseline), Store(current)
        before, after = (list(store.records()) for store in stores)
        damaged = {p: r for store in stores for p, r in store.damaged.items()}
        if damaged:
            warn_damaged(damaged, "cannot be compared")
            fail("some records cannot be read, so the runs cannot be compared; rerun "
                 "arbench run on the run that holds them")
        suite_file = suite or (baseline / "suite.yaml")
        if suite is not None and not suite.is_file():
            fail(f"suite file {suite} does not exist")
        effects, level = gate_of(suite_file if suite_file.is_file() else None,
                                 split_names(min_effect), alpha)
        result = compare_records(before, after, effects, level)
    except typer.Exit:
        raise
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
    from arbench.grid import GridError
    from arbench.leaderboard import write_leaderboard
    from arbench.store import Store, StoreError
    from arbench.suite import find_suite, load_suite

    try:
        suite = load_suite(find_suite(name))
    except GridError as error:
        fail(str(error))
    if rerun:
        from arbench.cli.commands_run import execute
        from arbench.registry import registry
        from arbench.suite import cells_of

        execute(suite.grids, suite.folder.name, suite.folder.parent, force=True,
                suite_path=suite.path)
        current = {cell.key for cell in cells_of(suite.grids, registry())}
        for stale in (suite.folder / "cells").glob("*.json"):
            if stale.stem not in current:  # a cell the suite no longer has
                stale.unlink()
                console.print(f"removed {stale} (no longer in the suite)", highlight=False)
    try:
        board = Store(suite.folder)
        records = list(board.records())
        warn_damaged(board.damaged, "left out of the leaderboard")
    except StoreError as error:
        fail(f"{error}; `arbench leaderboard {name} --rerun` computes it")
    for path in write_leaderboard(suite, records, layouts(), readme):
        console.print(f"wrote {path}", highlight=False)
