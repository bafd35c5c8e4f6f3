"""`arbench run`, `arbench list` and `arbench train`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from arbench.cli.app import (
    Names,
    app,
    console,
    fail,
    option,
    split_names,
)
from arbench.cli.progress import execute
from arbench.run.suite import MAX_CELLS

if TYPE_CHECKING:
    from arbench.plugin.specs import PluginSpec
    from arbench.run.grid import GridSpec

KINDS = ("task", "sampler", "model", "dataset", "metric", "reporter", "executor")


@app.command()
def run(
    task: Annotated[Names, option("Task name(s), comma separated.")] = None,
    sampler: Annotated[Names, option("Sampler name(s); default: every one that can run.")] = None,
    dataset: Annotated[Names, option("Dataset(s); default: the task's.")] = None,
    model: Annotated[Names, option("Model(s); default: every compatible one.")] = None,
    budget: Annotated[Names, option("NFE budget(s), e.g. 64,32; default: the sampler's.")] = None,
    seed: Annotated[Names, option("Seed(s), e.g. 0,1,2.")] = None,
    grid: Annotated[Path | None, option("YAML grid file instead of the flags above.")] = None,
    suite: Annotated[str | None, option("A suite (e.g. smoke) or its suite.yaml.")] = None,
    name: Annotated[str | None, option("Run name; default derived from the grid.")] = None,
    results_dir: Annotated[Path, option("Where run folders go.")] = Path("results"),
    device: Annotated[str | None, option("cpu, cuda or cuda:N; default: cuda if any.")] = None,
    force: Annotated[bool, option("Recompute finished cells.")] = False,
    set_: Annotated[Names, typer.Option("--set", help="PLUGIN.KEY=VALUE, repeatable.")] = None,
    sweep: Annotated[Names, option("PLUGIN.KEY=V1,V2,...: one cell per value.")] = None,
    data_dir: Annotated[Path | None, option("Data folder for --dataset, e.g. wavdir.")] = None,
    baselines: Annotated[bool, option("Add each task's reference samplers.")] = True,
    executor: Annotated[str, option("Where cells run: local, ray, slurm (`arbench list "
                                    "executor`).")] = "local",
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Cells at a time (local: worker "
                                      "processes, one device each).")] = 1,
    executor_set: Annotated[Names, typer.Option(
        "--executor-set", help="KEY=VALUE executor option, repeatable (e.g. address=auto, "
                               "partition=gpu).")] = None,
    wait: Annotated[bool, option("If another process is writing this run, wait for it "
                                 "instead of exiting.")] = False,
    max_cells: Annotated[int, option("Refuse grids that could hold more cells than this.")
                         ] = MAX_CELLS,
    timing_repeats: Annotated[int, option("Timings of each sampler call under 10 s (the "
                                          "speed-ups' intervals; samples from the first).")
                              ] = 3,
) -> None:
    """Run a task x sampler x budget x seed grid; finished cells are never recomputed.

    Exit codes: 0 every cell ok or skipped; 2 bad input, an unusable results folder, or
    another process writing the same run; 3 some cells failed (a rerun retries them);
    130 interrupted (finished cells are kept)."""
    from arbench.errors import GridError, PluginError
    from arbench.run.flags import check_run_name

    try:
        grids, given_name, suite_path = _grids(task, sampler, dataset, model, budget, seed,
                                               grid, suite, name)
        for each in grids:
            _apply_overrides(each, set_, sweep, data_dir, baselines)
        run_name = check_run_name(given_name or grids[0].run_name())
    except (GridError, PluginError) as error:
        fail(str(error))
    execute(grids, run_name, results_dir, device=device, executor=executor, jobs=jobs,
            executor_options=executor_set or [], force=force, suite_path=suite_path,
            wait=wait, timing_repeats=timing_repeats, max_cells=max_cells)


def _grids(task: Names, sampler: Names, dataset: Names, model: Names, budget: Names,
           seed: Names, grid: Path | None, suite: str | None, name: str | None
           ) -> tuple[list[GridSpec], str | None, Path | None]:
    """The grids the flags describe (one of --suite, --grid, or --task with --sampler),
    the run's name if one is given (--name, or the suite's), and the suite file."""
    from arbench.run.flags import parse_budget, parse_seed
    from arbench.run.grid import GridSpec, load_grid_file
    from arbench.run.suite import find_suite, load_suite

    if sum(x is not None for x in (grid, suite)) + bool(task or sampler) > 1:
        fail("give one of --suite, --grid, or --task (with --sampler)")
    if (suite or grid) and (dataset or model):
        fail("--dataset and --model pick a grid's cells: with --suite or --grid they are "
             "the file's (--budget and --seed replace its budgets and seeds)")
    found: tuple[list[GridSpec], str | None, Path | None] | None = None
    if suite is not None:
        suite_spec = load_suite(find_suite(suite))
        found = suite_spec.grids, name or suite_spec.name, suite_spec.path
    elif grid is not None:
        found = [load_grid_file(grid)], name, None
    if found is not None:
        for each in found[0]:  # a quick check of a paper suite: --budget 19 --seed 0
            each.budgets = [parse_budget(b) for b in split_names(budget)] or each.budgets
            each.seeds = [parse_seed(s) for s in split_names(seed)] or each.seeds
        return found
    if not task:
        fail("give --task (and --sampler; or --grid FILE, or --suite smoke); "
             "`arbench list` shows the names")
    spec = GridSpec(
        tasks=split_names(task), samplers=split_names(sampler),
        datasets=split_names(dataset), models=split_names(model),
        budgets=[parse_budget(b) for b in split_names(budget)] or [None],
        seeds=[parse_seed(s) for s in split_names(seed)] or [0],
    )
    return [spec], name, None


def _apply_overrides(spec: GridSpec, set_: Names, sweep: Names, data_dir: Path | None,
                     baselines: bool) -> None:
    """Layer the command line's --set, --sweep, --data-dir and --no-baselines on a grid."""
    from arbench.run.grid import parse_set_options

    spec.baselines = spec.baselines and baselines
    for plugin, values in parse_set_options(set_ or []).items():
        spec.params.setdefault(plugin, {}).update(values)
    for plugin, values in parse_set_options(sweep or [], sweep=True).items():
        spec.sweeps.setdefault(plugin, {}).update(values)
    if data_dir is not None:
        if not spec.datasets:
            fail("--data-dir needs --dataset naming the dataset that reads it (e.g. wavdir)")
        for each in spec.datasets:
            spec.params.setdefault(each, {})["data_dir"] = str(data_dir.resolve())


@app.command("list")
def list_plugins(
    kind: Annotated[str | None, typer.Argument(
        help=f"One of {', '.join(KINDS)}, or a plugin's name for its parameters.")] = None,
) -> None:
    """Show every plugin (name, package, description, capabilities), or one plugin's
    parameters with their types, ranges and defaults."""
    from rich.markup import escape
    from rich.table import Table

    from arbench.errors import PluginError
    from arbench.plugin.registry import registry

    try:
        reg = registry()
    except PluginError as error:
        fail(str(error))
    if kind is not None and kind.rstrip("s") not in KINDS:
        specs = [spec for each in KINDS for spec in reg.all(each) if spec.name == kind]
        if not specs:
            from arbench.errors import did_you_mean

            names = [spec.name for each in KINDS for spec in reg.all(each)]
            fail(f"'{kind}' is neither a kind ({', '.join(KINDS)}) nor a plugin name."
                 f"{did_you_mean(kind, names)}")
        _show_plugin(specs[0])
        return
    for each in [kind.rstrip("s")] if kind else KINDS:
        table = Table(title=f"{each}s", title_justify="left", show_lines=False)
        for column in ("name", "package", "description", "capabilities"):
            table.add_column(column, overflow="fold")
        for spec in reg.all(each):
            table.add_row(spec.name, f"{spec.package} {spec.version}", spec.description,
                          escape(spec.capabilities()))
        Console().print(table)


def _show_plugin(spec: PluginSpec[Any]) -> None:
    """One plugin: what it is, what it offers or needs, and its declared parameters."""
    from rich.markup import escape
    from rich.table import Table

    out = Console()
    out.print(f"[bold]{spec.name}[/] ({spec.kind}, {spec.package} {spec.version}): "
              f"{escape(spec.description)}", highlight=False)
    if spec.capabilities():
        out.print(escape(spec.capabilities()), highlight=False)
    parameters = getattr(spec.load(), "parameters", {})
    if not parameters:
        out.print("no parameters")
        return
    table = Table(title=f"parameters (--set {spec.name}.KEY=VALUE)", title_justify="left")
    for column in ("key", "type and range", "default", "description"):
        table.add_column(column, overflow="fold")
    for key, param in parameters.items():
        table.add_row(key, escape(param.describe_type()), escape(repr(param.default)),
                      escape(param.doc))
    out.print(table)


@app.command()
def train(
    model: Annotated[str, typer.Argument(help="Model name, see `arbench list model`.")],
    dataset: Annotated[str, typer.Option(help="Dataset to train on.")],
    out: Annotated[Path | None, option("Checkpoint path; default: the shipped one.")] = None,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    set_: Annotated[Names, typer.Option(
        "--set", help="KEY=VALUE training option, or DATASET.KEY=VALUE dataset parameter."
    )] = None,
    data_dir: Annotated[Path | None, option("Data folder, for datasets read from disk.")] = None,
    device: Annotated[str | None, option("cpu, cuda or cuda:N; default: cuda if any.")] = None,
    nproc: Annotated[int, typer.Option(
        min=1, help="Train in N processes on this machine (runs torchrun; one GPU each on "
                    "cuda). For several nodes, run torchrun yourself (docs/slurm).")] = 1,
) -> None:
    """Train a model and write its checkpoint with a sha256 sidecar."""
    from arbench import api
    from arbench.errors import ArbenchError
    from arbench.run.flags import parse_assignments
    from arbench.training.distributed import is_main

    try:
        if nproc > 1:
            api.exec_torchrun(nproc, _without_nproc(sys.argv[sys.argv.index("train") + 1:]))
        path = api.train(model, dataset, out, seed, parse_assignments(set_ or [], "--set"),
                         data_dir, device)
    except ArbenchError as error:
        fail(str(error))
    except KeyboardInterrupt:
        fail("interrupted; run the same command again: training resumes from the last "
             "finished epoch or evaluation (its .partial.pt beside the checkpoint)", code=130)
    if is_main():
        console.print(f"wrote {path}")


def _without_nproc(argv: list[str]) -> list[str]:
    """The command line less its ``--nproc N`` (torchrun starts each copy without it)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            kept.append(arg)
    return kept
