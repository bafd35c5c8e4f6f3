"""`arbench run`, `arbench list` and `arbench train`."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

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
from arbench.suite import MAX_CELLS

if TYPE_CHECKING:
    from arbench.contracts import Executor
    from arbench.grid import Cell, GridSpec
    from arbench.runner import CellJob
    from arbench.specs import PluginSpec
    from arbench.store import Store

KINDS = ("task", "sampler", "model", "dataset", "metric", "reporter", "executor")
EXIT_CELLS_FAILED = 3  # exit codes: 1 a regression (compare), 2 bad input, 130 interrupted


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
    from arbench.grid import GridError, check_run_name
    from arbench.registry import PluginError

    try:
        grids, given_name, suite_path = _grids(task, sampler, dataset, model, budget, seed,
                                               grid, suite, name)
        for each in grids:
            _apply_overrides(each, set_, sweep, data_dir, baselines)
        run_name = check_run_name(given_name or grids[0].run_name())
    except (GridError, PluginError) as error:
        fail(str(error))
    _, failed = execute(grids, run_name, results_dir, device=device, executor=executor,
                        jobs=jobs, executor_options=executor_set or [], force=force,
                        suite_path=suite_path, wait=wait, timing_repeats=timing_repeats,
                        max_cells=max_cells)
    if failed:
        raise typer.Exit(EXIT_CELLS_FAILED)


def _grids(task: Names, sampler: Names, dataset: Names, model: Names, budget: Names,
           seed: Names, grid: Path | None, suite: str | None, name: str | None
           ) -> tuple[list[GridSpec], str | None, Path | None]:
    """The grids the flags describe (one of --suite, --grid, or --task with --sampler),
    the run's name if one is given (--name, or the suite's), and the suite file."""
    from arbench.grid import GridSpec, load_grid_file, parse_budget, parse_seed
    from arbench.suite import find_suite, load_suite

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


def execute(grids: list[GridSpec], run_name: str, results_dir: Path, *,
            device: str | None = None, executor: str = "local", jobs: int = 1,
            executor_options: list[str] | None = None, force: bool = False,
            suite_path: Path | None = None, wait: bool = False, timing_repeats: int = 3,
            max_cells: int = MAX_CELLS) -> tuple[Store, int]:
    """Expand `grids`, run every cell not finished yet into ``results_dir/run_name`` and
    print the report: what `arbench run` and `arbench leaderboard --rerun` do. Returns
    the store and the number of cells that failed."""
    from arbench.checkpoints import CheckpointError
    from arbench.grid import GridError
    from arbench.provenance import is_current
    from arbench.registry import PluginError, registry
    from arbench.runner import CellJob, resolve_device
    from arbench.store import RunBusy, Store
    from arbench.suite import cells_of

    try:
        cells = cells_of(grids, registry(), max_cells)
        device_name = resolve_device(device)
        engine = _executor(executor, jobs, executor_options or [])
        if timing_repeats < 1:
            raise ValueError(f"--timing-repeats {timing_repeats}: give at least 1")
    except (GridError, PluginError, ValueError, CheckpointError) as error:
        fail(str(error))
    store = Store(results_dir / run_name)
    try:
        with store.writer(wait=wait):
            if store.cells_dir.is_dir():
                for _ in store.records():  # finds the damaged ones
                    pass
                warn_damaged(store.damaged, "ignored; their cells are recomputed")
            store.write_meta("grid.json", {"grids": [g.__dict__ for g in grids],
                                           "device": device_name})
            if suite_path is not None:
                store.adopt_suite(suite_path)
            reg = registry()
            todo = store.pending(cells, force=force,
                                 current=lambda record: is_current(record, reg))
            console.print(f"run [bold]{run_name}[/]: {len(cells)} cells, "
                          f"{len(cells) - len(todo)} already finished, {len(todo)} to run on "
                          f"{device_name} ({executor}{f', {jobs} at a time' if jobs > 1 else ''})",
                          highlight=False)
            statuses = _run_with_progress(
                engine, CellJob(str(store.run_dir.resolve()), run_name, device_name,
                                timing_repeats=timing_repeats), todo)
            _print_report(store, suite_path)
    except RunBusy as error:
        fail(str(error))
    except OSError as error:  # an unwritable or full results folder
        fail(f"cannot write the run folder {store.run_dir}: {error.strerror or error}; give a "
             "writable --results-dir with free space (finished records are kept)")
    if statuses["failed"]:
        console.print(f"[red]{statuses['failed']} cell(s) failed[/] (their records say why; "
                      "a rerun retries them)", highlight=False)
    return store, statuses["failed"]


def _executor(name: str, jobs: int, options: list[str]) -> Executor:
    """The executor plugin `name` built with ``jobs`` and the --executor-set options."""
    from arbench.params import parse_assignments
    from arbench.registry import registry

    if jobs < 1:
        raise ValueError(f"--jobs {jobs}: give at least 1")
    params = {"jobs": jobs, **parse_assignments(options, "--executor-set")}
    return registry().get("executor", name).load()(**params)


def _apply_overrides(spec: GridSpec, set_: Names, sweep: Names, data_dir: Path | None,
                     baselines: bool) -> None:
    """Layer the command line's --set, --sweep, --data-dir and --no-baselines on a grid."""
    from arbench.grid import parse_set_options

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


def _run_with_progress(engine: Executor, job: CellJob, todo: list[Cell]) -> Counter[str]:
    """Run `todo`, showing progress: a bar on a terminal, else one plain line per finished
    cell (logs of CI, SLURM, ``| tee``). Returns how many cells ended in each status."""
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    statuses: Counter[str] = Counter()
    started = time.monotonic()
    columns = [TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn()]
    terminal = console.is_terminal
    with Progress(*columns, console=console, transient=False, disable=not terminal) as progress:
        bar = progress.add_task("grid", total=len(todo))

        def done(cell: Cell, record: dict[str, Any]) -> None:
            if _INTERRUPTED.is_set():  # a Ctrl-C whose KeyboardInterrupt was swallowed
                raise KeyboardInterrupt
            status = record["status"]
            statuses[status] += 1
            finished = sum(statuses.values())
            if status != "ok":
                colour = "yellow" if status == "skipped" else "red"
                progress.console.print(f"[{colour}]{status}[/] {cell.label()}: {record['reason']}",
                                       highlight=False, soft_wrap=not terminal)
            elif not terminal:
                spent = time.monotonic() - started
                eta = spent / finished * (len(todo) - finished)
                progress.console.print(
                    f"[{finished}/{len(todo)}] ok {cell.label()} "
                    f"{record.get('wall_time_s') or 0:.1f}s, eta {eta:.0f}s", highlight=False,
                    soft_wrap=True)
            progress.advance(bar)

        try:
            with _ctrl_c_noted():
                engine.run(todo, job, done)
                if _INTERRUPTED.is_set():
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            fail(f"interrupted: {sum(statuses.values())} of {len(todo)} cells finished and "
                 "stored; run the same command again to resume", code=130)
    return statuses


_INTERRUPTED = threading.Event()


@contextmanager
def _ctrl_c_noted() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt as usual and is also noted: one that lands where
    Python swallows exceptions (a finalizer the collector runs, a queue's cleanup) still
    ends the run with exit 130 at the next finished cell, never with exit 0."""
    def handler(signum: int, frame: Any) -> None:
        _INTERRUPTED.set()
        raise KeyboardInterrupt

    _INTERRUPTED.clear()
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _print_report(store: Store, suite_path: Path | None = None) -> None:
    """Print the tables (after a suite's published figures beside ours), write the long
    CSV and the figures the run's tasks ask for."""
    from arbench.leaderboard import references_markdown
    from arbench.registry import registry
    from arbench.report import build_report, markdown_report
    from arbench.store import atomic_write
    from arbench.suite import load_suite

    records = list(store.records())
    report = build_report(records, layouts(), [store.run_dir])
    warn_damaged(store.damaged, "left out of the report")
    atomic_write(store.run_dir / "report.csv",
                 lambda path: report.tidy().to_csv(path, index=False))
    references = references_markdown(load_suite(suite_path), report) if suite_path else ""
    print_out(references + markdown_report(report))
    ran = {record["task"] for record in records if record["status"] == "ok"}
    figures = [name for spec in registry().all("task") if spec.name in ran
               for name in spec.figures]
    for name in dict.fromkeys(figures):
        for path in registry().get("reporter", name).load()().write(report, store.run_dir):
            console.print(f"{name}: wrote {path}", highlight=False)


@app.command("list")
def list_plugins(
    kind: Annotated[str | None, typer.Argument(
        help=f"One of {', '.join(KINDS)}, or a plugin's name for its parameters.")] = None,
) -> None:
    """Show every plugin (name, package, description, capabilities), or one plugin's
    parameters with their types, ranges and defaults."""
    from rich.markup import escape
    from rich.table import Table

    from arbench.registry import PluginError, registry

    try:
        reg = registry()
    except PluginError as error:
        fail(str(error))
    if kind is not None and kind.rstrip("s") not in KINDS:
        specs = [spec for each in KINDS for spec in reg.all(each) if spec.name == kind]
        if not specs:
            from arbench.params import did_you_mean

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
) -> None:
    """Train a model and write its checkpoint with a sha256 sidecar."""
    from arbench.params import ParameterError, parse_assignments
    from arbench.registry import PluginError, registry
    from arbench.runner import seed_everything

    try:
        model_spec = registry().get("model", model)
        dataset_spec = registry().get("dataset", dataset)
    except PluginError as error:
        fail(str(error))
    try:
        options = parse_assignments(set_ or [], "--set")
    except ParameterError as error:
        fail(str(error))
    if out is None and data_dir is not None:
        fail("give --out PATH for a checkpoint of your own data")
    from arbench.checkpoints import CheckpointError

    try:
        model_class = model_spec.load()
        prefix = f"{dataset}."
        dataset_params = {key.removeprefix(prefix): options.pop(key)
                          for key in [key for key in options if key.startswith(prefix)]}
        out = out or model_class.checkpoint_path(dataset, **options)
        if data_dir:
            dataset_params["data_dir"] = str(data_dir.resolve())
        data = dataset_spec.load()(**dataset_params)
        data.name = dataset
        seed_everything(seed)
        path = model_class.train(data, out=out, seed=seed, **options)
    except (ValueError, CheckpointError, PluginError) as error:  # bad options, data or shape
        fail(f"{model} on {dataset}: {error}")
    except KeyboardInterrupt:
        fail("interrupted; run the same command again: training resumes from the last "
             "finished epoch or evaluation (its .partial.pt beside the checkpoint)", code=130)
    console.print(f"wrote {path}")
