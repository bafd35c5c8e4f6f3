"""The ``arbench`` command line. Heavy imports (torch, pandas) happen inside
commands, so ``arbench --help`` and ``arbench list`` start fast."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="Benchmark samplers of autoregressive models.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
console = Console(stderr=True)

KINDS = ("task", "sampler", "model", "dataset", "metric")


def _split(values: list[str] | None) -> list[str]:
    """Accept both ``--x a,b`` and ``--x a --x b``."""
    return [item.strip() for value in values or [] for item in value.split(",") if item.strip()]


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)


def _opt(help_text: str) -> typer.models.OptionInfo:
    return typer.Option(help=help_text)


Names = list[str] | None


@app.command()
def run(
    task: Annotated[Names, _opt("Task name(s), comma separated.")] = None,
    sampler: Annotated[Names, _opt("Sampler name(s).")] = None,
    dataset: Annotated[Names, _opt("Dataset(s); default: the task's.")] = None,
    model: Annotated[Names, _opt("Model(s); default: every compatible one.")] = None,
    budget: Annotated[Names, _opt("NFE budget(s), e.g. 64,32; default: the sampler's.")] = None,
    seed: Annotated[Names, _opt("Seed(s), e.g. 0,1,2.")] = None,
    grid: Annotated[Path | None, _opt("YAML grid file instead of the flags above.")] = None,
    name: Annotated[str | None, _opt("Run name; default derived from the grid.")] = None,
    results_dir: Annotated[Path, _opt("Where run folders go.")] = Path("results"),
    device: Annotated[str | None, _opt("cpu, cuda or cuda:N; default: cuda if any.")] = None,
    force: Annotated[bool, _opt("Recompute finished cells.")] = False,
    set_: Annotated[Names, typer.Option("--set", help="PLUGIN.KEY=VALUE, repeatable.")] = None,
    sweep: Annotated[Names, _opt("PLUGIN.KEY=V1,V2,...: one cell per value.")] = None,
    data_dir: Annotated[Path | None, _opt("Data folder for --dataset, e.g. wavdir.")] = None,
    baselines: Annotated[bool, _opt("Add each task's reference samplers.")] = True,
) -> None:
    """Run a task x sampler x budget x seed grid; finished cells are never recomputed."""
    from arbench.grid import (
        GridError,
        GridSpec,
        expand,
        load_grid_file,
        parse_budget,
        parse_seed,
        parse_set_options,
    )
    from arbench.registry import PluginError, registry
    from arbench.store import Store

    try:
        if grid is not None:
            spec = load_grid_file(grid)
        else:
            if not task or not sampler:
                _fail("give --task and --sampler (or --grid FILE); `arbench list` shows the names")
            spec = GridSpec(
                tasks=_split(task), samplers=_split(sampler), datasets=_split(dataset),
                models=_split(model),
                budgets=[parse_budget(b) for b in _split(budget)] or [None],
                seeds=[parse_seed(s) for s in _split(seed)] or [0],
            )
        spec.name = name or spec.name
        spec.baselines = spec.baselines and baselines
        for plugin, values in parse_set_options(set_ or []).items():
            spec.params.setdefault(plugin, {}).update(values)
        for plugin, values in parse_set_options(sweep or [], sweep=True).items():
            spec.sweeps.setdefault(plugin, {}).update(values)
        if data_dir is not None:
            if not spec.datasets:
                _fail("--data-dir needs --dataset naming the dataset that reads it (e.g. wavdir)")
            for each in spec.datasets:
                spec.params.setdefault(each, {})["data_dir"] = str(data_dir.resolve())
        cells = expand(spec, registry())
    except (GridError, PluginError) as error:
        _fail(str(error))
    from arbench.runner import Runner, resolve_device

    try:
        device_name = resolve_device(device)
    except ValueError as error:
        _fail(str(error))
    run_name = spec.run_name()
    store = Store(results_dir / run_name)
    store.write_meta("grid.json", {"grid": spec.__dict__, "device": device_name})
    runner = Runner(registry(), store, device_name, run_name)
    todo = runner.pending(cells, force=force)
    console.print(f"run [bold]{run_name}[/]: {len(cells)} cells, {len(cells) - len(todo)} "
                  f"already finished, {len(todo)} to run on {device_name}", highlight=False)
    _run_with_progress(runner, todo)
    _print_report(store)


def _run_with_progress(runner, todo) -> None:
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("grid", total=len(todo))

        def done(cell, record) -> None:
            status = record["status"]
            if status != "ok":
                colour = "yellow" if status == "skipped" else "red"
                progress.console.print(f"[{colour}]{status}[/] {cell.label()}: {record['reason']}",
                                       highlight=False)
            progress.advance(bar)

        def starting(cell) -> None:
            progress.update(bar, description=cell.label())

        for cell in todo:
            starting(cell)
            runner.run([cell], on_cell=done)
        progress.update(bar, description="grid")


def _layouts() -> dict:
    """Paper-style table layouts of the installed tasks, by task name."""
    from arbench.registry import registry

    return {spec.name: spec.table for spec in registry().all("task") if spec.table}


def _print_report(store) -> None:
    from arbench.report import render

    print(render(list(store.records()), csv_path=store.run_dir / "report.csv",
                 layouts=_layouts()))


@app.command("list")
def list_plugins(
    kind: Annotated[str | None, typer.Argument(help=f"One of {', '.join(KINDS)}.")] = None,
) -> None:
    """Show every plugin: name, package, description and capabilities."""
    from rich.table import Table

    from arbench.registry import PluginError, registry

    if kind is not None and kind.rstrip("s") not in KINDS:
        _fail(f"unknown kind '{kind}'; choose one of {', '.join(KINDS)}")
    try:
        reg = registry()
    except PluginError as error:
        _fail(str(error))
    for each in [kind.rstrip("s")] if kind else KINDS:
        table = Table(title=f"{each}s", title_justify="left", show_lines=False)
        for column in ("name", "package", "description", "capabilities"):
            table.add_column(column, overflow="fold")
        for spec in reg.all(each):
            table.add_row(spec.name, f"{spec.package} {spec.version}", spec.description,
                          spec.capabilities())
        Console().print(table)


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(help="Run folder(s) under results/.")],
    csv: Annotated[Path | None, typer.Option(help="Write the long-format CSV here.")] = None,
) -> None:
    """Print the markdown table of one or more runs."""
    from arbench.report import render
    from arbench.store import Store, StoreError

    try:
        records = [record for run_dir in runs for record in Store(run_dir).records()]
    except StoreError as error:
        _fail(str(error))
    print(render(records, csv_path=csv, layouts=_layouts()))


@app.command()
def train(
    model: Annotated[str, typer.Argument(help="Model name, see `arbench list model`.")],
    dataset: Annotated[str, typer.Option(help="Dataset to train on.")],
    out: Annotated[Path | None, _opt("Checkpoint path; default: the shipped one.")] = None,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    set_: Annotated[Names, typer.Option("--set", help="KEY=VALUE training option.")] = None,
    data_dir: Annotated[Path | None, _opt("Data folder, for datasets read from disk.")] = None,
) -> None:
    """Train a model and write its checkpoint with a sha256 sidecar."""
    import yaml

    from arbench.checkpoints import builtin_path
    from arbench.registry import PluginError, registry
    from arbench.runner import seed_everything

    try:
        model_spec = registry().get("model", model)
        dataset_spec = registry().get("dataset", dataset)
    except PluginError as error:
        _fail(str(error))
    options = {}
    for item in set_ or []:
        key, sep, value = item.partition("=")
        if not sep:
            _fail(f"--set '{item}' must look like KEY=VALUE")
        options[key] = yaml.safe_load(value)
    if out is None and data_dir is not None:
        _fail("give --out PATH for a checkpoint of your own data")
    out = out or builtin_path(model, dataset)
    dataset_params = {"data_dir": str(data_dir.resolve())} if data_dir else {}
    data = dataset_spec.load()(**dataset_params)
    data.name = dataset
    seed_everything(seed)
    path = model_spec.load().train(data, out=out, seed=seed, **options)
    console.print(f"wrote {path}")
