"""arbench as a library: the one entry for running, and what every command calls.

Each ``arbench`` command is one function here (the CLI parses flags and prints)::

    from arbench import api

    request = api.request(tasks=["unconditional"], samplers=["ancestral"], datasets=["digits"])
    outcome = api.run(request, Path("results"))
    markdown, written = api.run_report(outcome)
    verdict = api.compare(Path("leaderboards/smoke"), outcome.store.run_dir)

A run goes one way: the request's grids are planned (`arbench.run.plan`, pure), what
each cell reads is fingerprinted (`arbench.run.provenance.take`), the cells not yet
finished by today's code are executed where the executor puts them (`arbench.run`),
each record is stored as it finishes (`arbench.results.store`), and the report reads
the stored records (`arbench.report`). Bad input is an `arbench.errors.ArbenchError`
whose message says what to do; nothing here prints (pass `on_start` and `on_record`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from arbench.errors import ArbenchError, UsageError, did_you_mean
from arbench.plugin.kinds import Kind
from arbench.plugin.specs import PluginSpec
from arbench.run.flags import MAX_CELLS

if TYPE_CHECKING:
    from arbench.report.build import Report, TaskViews
    from arbench.results.compare import Comparison
    from arbench.results.record import Record
    from arbench.results.store import Store
    from arbench.run.cell import Cell
    from arbench.run.executor import Executor
    from arbench.run.grid import GridSpec
    from arbench.run.suite import Suite

__all__ = ["MAX_CELLS", "Kind", "PluginSpec", "Record", "Reported", "RunOutcome", "RunRequest",
           "compare", "exec_torchrun", "import_released", "is_main_process", "leaderboard",
           "newest_run", "plugin", "plugin_parameters", "plugins", "report", "request", "run",
           "run_report", "train"]

OnRecord = Callable[["Cell", "Record"], None]


@dataclass(frozen=True)
class RunRequest:
    """What to run: grids, the run's name, and the suite they come from (if any)."""

    grids: tuple[GridSpec, ...]
    name: str
    suite: Suite | None = None


def request(*, tasks: Sequence[str] = (), samplers: Sequence[str] = (),
            datasets: Sequence[str] = (), models: Sequence[str] = (),
            budgets: Sequence[str] = (), seeds: Sequence[str] = (), grid: Path | None = None,
            suite: str | None = None, name: str | None = None, set_: Sequence[str] = (),
            sweep: Sequence[str] = (), data_dir: Path | None = None, baselines: bool = True
            ) -> RunRequest:
    """The grids the command line asks for: one of a `suite` (a name or its suite.yaml),
    a `grid` file, or `tasks` with `samplers` and the rest; ``--budget`` and ``--seed``
    replace a file's lists, ``--set``, ``--sweep`` and ``--data-dir`` are layered on
    every grid. The suite file is parsed here, once."""
    from arbench.run.flags import check_run_name, parse_budget, parse_seed
    from arbench.run.grid import GridSpec, load_grid_file
    from arbench.run.suite import find_suite, load_suite

    if sum(x is not None for x in (grid, suite)) + bool(tasks or samplers) > 1:
        raise UsageError("give one of --suite, --grid, or --task (with --sampler)")
    if (suite or grid) and (datasets or models):
        raise UsageError("--dataset and --model pick a grid's cells: with --suite or --grid "
                         "they are the file's (--budget and --seed replace its budgets and "
                         "seeds)")
    budget_list = [parse_budget(text) for text in budgets] or None
    seed_list = [parse_seed(text) for text in seeds] or None
    loaded = load_suite(find_suite(suite)) if suite is not None else None
    if loaded is not None:
        grids, name = list(loaded.grids), name or loaded.name
    elif grid is not None:
        grids = [load_grid_file(grid)]
    elif tasks:
        grids = [GridSpec(tasks=list(tasks), samplers=list(samplers), datasets=list(datasets),
                          models=list(models))]
    else:
        raise UsageError("give --task (and --sampler; or --grid FILE, or --suite smoke); "
                         "`arbench list` shows the names")
    grids = [each.with_overrides(set_, sweep, data_dir, baselines, budget_list, seed_list)
             for each in grids]
    return RunRequest(tuple(grids), check_run_name(name or grids[0].run_name()), loaded)


@dataclass
class RunOutcome:
    """Where a run's records are, how many cells it had and ran, and how each ended."""

    store: Store
    cells: int
    ran: int
    device: str
    suite: Suite | None = None
    statuses: Counter[str] = field(default_factory=Counter)
    damaged: dict[Path, str] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        """Cells that failed in this run (a rerun retries them)."""
        return self.statuses["failed"]


def run(plan: RunRequest, results_dir: Path, *, device: str | None = None,
        executor: str | None = None, jobs: int = 1, executor_options: Sequence[str] = (),
        force: bool = False, wait: bool = False, timing_repeats: int = 3,
        max_cells: int = MAX_CELLS, on_start: Callable[[RunOutcome], None] | None = None,
        on_record: OnRecord | None = None) -> RunOutcome:
    """Plan `plan`'s grids, fingerprint what each cell reads, and run every cell not yet
    finished by today's code into ``results_dir/NAME``; `on_start` sees the plan,
    `on_record` each record as it is stored."""
    from arbench.plugin.registry import registry
    from arbench.results.store import Store
    from arbench.run.executor import CellJob
    from arbench.run.plan import plan as plan_cells
    from arbench.run.provenance import is_current, take
    from arbench.run.runner import resolve_device

    try:
        planned = plan_cells(plan.grids, registry(), max_cells)
        device_name = resolve_device(device)
        engine = _executor(executor, jobs, executor_options)
        if timing_repeats < 1:
            raise UsageError(f"--timing-repeats {timing_repeats}: give at least 1")
    except ValueError as error:
        raise UsageError(str(error)) from None
    store = Store(results_dir / plan.name)
    try:
        with store.writer(wait=wait):
            cells = take(planned, registry())
            outcome = RunOutcome(store, len(cells), 0, device_name, plan.suite)
            if store.cells_dir.is_dir():
                outcome.damaged = store.damaged_records()
            store.write_meta("grid.json", {"grids": [g.__dict__ for g in plan.grids],
                                           "device": device_name})
            if plan.suite is not None:
                store.adopt_suite(plan.suite.text, plan.suite.path)
            todo = store.pending(cells, force=force,
                                 current=lambda record: is_current(record, registry()))
            outcome.ran = len(todo)
            if on_start is not None:
                on_start(outcome)

            def done(cell: Cell, record: Record) -> None:
                outcome.statuses[record.status] += 1
                if on_record is not None:
                    on_record(cell, record)

            engine.run(todo, CellJob(str(store.run_dir.resolve()), plan.name, device_name,
                                     timing_repeats=timing_repeats), done)
    except OSError as error:  # an unwritable or full results folder
        raise UsageError(f"cannot write the run folder {store.run_dir}: "
                         f"{error.strerror or error}; give a writable --results-dir with free "
                         "space (finished records are kept)") from None
    return outcome


def _executor(name: str | None, jobs: int, options: Sequence[str]) -> Executor:
    """The executor plugin `name` (None: the default one) built with ``jobs`` and its
    KEY=VALUE options."""
    from arbench.plugin.registry import registry
    from arbench.plugin.specs import ExecutorSpec
    from arbench.run.flags import parse_assignments

    if jobs < 1:
        raise UsageError(f"--jobs {jobs}: give at least 1")
    params = {"jobs": jobs, **parse_assignments(list(options), "--executor-set")}
    if name is None:
        defaults = [spec for spec in registry().all(ExecutorSpec) if spec.default]
        if len(defaults) != 1:
            raise UsageError(f"{len(defaults)} installed executors claim to be the default; "
                             "name one with --executor")
        name = defaults[0].name
    engine: Executor = registry().get(ExecutorSpec, name).load()(**params)
    return engine


def task_views() -> TaskViews:
    """How the installed tasks want their results shown (tables, reference samplers)."""
    from arbench.plugin.registry import registry
    from arbench.plugin.specs import TaskSpec
    from arbench.report.build import TaskViews

    return TaskViews.of(registry().all(TaskSpec))


@dataclass
class Read:
    """The valid records of run folders, the damaged files with the reason each cannot be
    read, and the records of an older schema read by migration."""

    records: list[Record]
    damaged: dict[Path, str]
    migrated: list[Path]


def read_records(run_dirs: Sequence[Path]) -> Read:
    """Every record of the run folders (`Read`)."""
    from arbench.results.store import Store

    stores = [Store(run_dir) for run_dir in run_dirs]
    records = [record for store in stores for record in store.records()]
    return Read(records, {path: why for store in stores for path, why in store.damaged.items()},
                [path for store in stores for path in store.migrated])


def newest_run(results_dir: Path) -> Path:
    """The run folder under `results_dir` whose cells changed last."""
    runs = [cells.parent for cells in results_dir.glob("*/cells") if cells.is_dir()]
    if not runs:
        raise UsageError(f"no runs under {results_dir}/; run `arbench run ...` first or name "
                         "a run folder")
    return max(runs, key=lambda run: (run / "cells").stat().st_mtime)


@dataclass
class Reported:
    """What `report` made: the markdown, the damaged records left out, the files written."""

    markdown: str
    damaged: dict[Path, str]
    migrated: list[Path]
    written: dict[str, list[Path]]


def report(run_dirs: Sequence[Path], formats: Sequence[str] = (), out: Path | None = None,
           csv: Path | None = None) -> Reported:
    """The report of one or more run folders (merged): its markdown, the long CSV at
    `csv`, and each reporter in `formats` written into `out` (default RUN/report, or
    results/report-RUN1+RUN2 beside merged runs)."""
    from arbench.plugin.registry import registry
    from arbench.plugin.specs import ReporterSpec
    from arbench.report.build import markdown_report
    from arbench.results.store import atomic_write

    reporters = {name: registry().get(ReporterSpec, name) for name in dict.fromkeys(formats)}
    read = read_records(run_dirs)
    built = build(run_dirs, read.records)
    folder = out or (run_dirs[0] / "report" if len(run_dirs) == 1 else
                     run_dirs[0].parent / ("report-" + "+".join(run.name for run in run_dirs)))
    written: dict[str, list[Path]] = {}
    try:
        if csv is not None:
            written["long table"] = [atomic_write(csv, lambda path: built.tidy().to_csv(
                path, index=False))]
        if reporters:
            if folder.exists() and not folder.is_dir():
                raise UsageError(f"--out {folder} is a file; give a folder for the report files")
            folder.mkdir(parents=True, exist_ok=True)
        written |= {name: spec.load()().write(built, folder) for name, spec in reporters.items()}
    except OSError as error:  # a full disk or an unwritable folder: no partial files
        raise UsageError(f"cannot write the report ({error.strerror or error}: "
                         f"{error.filename or folder}); free space or give another --out / "
                         "--csv (the run's records are untouched)") from None
    return Reported(markdown_report(built), read.damaged, read.migrated, written)


def build(run_dirs: Sequence[Path], records: list[Record] | None = None) -> Report:
    """The report (paper tables, summary, problems) of run folders' records."""
    from arbench.report.build import build_report

    if records is None:
        records = read_records(run_dirs).records
    return build_report(records, task_views(), run_dirs)


def run_report(outcome: RunOutcome) -> tuple[str, list[Path]]:
    """What `arbench run` shows at the end: the markdown tables (after its suite's published
    figures), with the long CSV and the figures the run's tasks ask for written beside
    the records. Returns the markdown and the files written."""
    from arbench.plugin.registry import registry
    from arbench.plugin.specs import ReporterSpec, TaskSpec
    from arbench.report.build import markdown_report
    from arbench.report.leaderboard import references_markdown
    from arbench.results.store import atomic_write

    run_dir = outcome.store.run_dir
    records = read_records([run_dir]).records
    built = build([run_dir], records)
    written = [atomic_write(run_dir / "report.csv",
                            lambda path: built.tidy().to_csv(path, index=False))]
    suite = outcome.suite
    references = references_markdown(suite, built) if suite is not None else ""
    ran = {record.identity.task for record in records if record.status == "ok"}
    figures = [name for spec in registry().all(TaskSpec) if spec.name in ran
               for name in spec.figures]
    for name in dict.fromkeys(figures):
        written += registry().get(ReporterSpec, name).load()().write(built, run_dir)
    return references + markdown_report(built), written


def compare(baseline: Path, current: Path, suite: Path | None = None,
            min_effects: Sequence[str] = (), alpha: float | None = None) -> Comparison:
    """Match the two runs' cells by key and judge every metric (`arbench.results.compare`);
    the gate is the suite's (``suite``, else BASELINE/suite.yaml) unless overridden."""
    from arbench.results.compare import compare_records
    from arbench.run.suite import gate, load_suite

    records: dict[str, list[Record]] = {}
    damaged: dict[Path, str] = {}
    for name, folder in (("baseline", baseline), ("current", current)):
        read = read_records([folder])
        records[name] = read.records
        damaged |= read.damaged
    if damaged:
        reasons = "; ".join(list(damaged.values())[:5])
        raise UsageError(f"{len(damaged)} record(s) cannot be read, so the runs cannot be "
                         f"compared ({reasons}); rerun arbench run on the run that holds them")
    if suite is not None and not suite.is_file():
        raise UsageError(f"suite file {suite} does not exist")
    suite_file = suite or (baseline / "suite.yaml")
    gated = load_suite(suite_file) if suite_file.is_file() else None
    effects, level = (gate(list(min_effects), alpha, gated.min_effects, gated.alpha) if gated
                      else gate(list(min_effects), alpha))
    return compare_records(records["baseline"], records["current"], effects, level)


def leaderboard(name: str, readme: Path, *, rerun: bool = False,
                on_start: Callable[[RunOutcome], None] | None = None,
                on_record: OnRecord | None = None) -> tuple[RunOutcome | None, list[Path],
                                                             list[Path]]:
    """Render suite `name`'s leaderboard (its README and the block in `readme`) from its
    committed cells; with `rerun`, recompute every cell first and remove the committed
    cells the suite no longer has. Returns the run (if any), the removed and the written
    files."""
    from arbench.plugin.registry import registry
    from arbench.report.leaderboard import write_leaderboard
    from arbench.run.plan import plan
    from arbench.run.provenance import take
    from arbench.run.suite import find_suite, load_suite

    suite = load_suite(find_suite(name))
    outcome, removed = None, []
    if rerun:
        outcome = run(RunRequest(tuple(suite.grids), suite.folder.name, suite),
                      suite.folder.parent, force=True, on_start=on_start, on_record=on_record)
        keys = {cell.key for cell in take(plan(suite.grids, registry()), registry())}
        removed = [path for path in (suite.folder / "cells").glob("*.json")
                   if path.stem not in keys]
        for path in removed:
            path.unlink()
    records = read_records([suite.folder]).records
    if not records:
        raise UsageError(f"the suite '{suite.name}' has no committed cells; "
                         f"`arbench leaderboard {name} --rerun` computes them")
    return outcome, removed, write_leaderboard(suite, records, task_views(), readme)


def plugins(kind: str | None = None) -> dict[Kind, list[PluginSpec[Any]]]:
    """Every installed plugin by kind, or those of `kind` (``sampler`` or ``samplers``)."""
    from arbench.plugin.registry import registry

    if kind is None:
        return {each: registry().of_kind(each) for each in Kind}
    try:
        chosen = Kind(kind.removesuffix("s"))
    except ValueError:
        raise UsageError(f"'{kind}' is not a kind of plugin: one of "
                         f"{', '.join(each.value for each in Kind)}") from None
    return {chosen: registry().of_kind(chosen)}


def plugin(name: str) -> PluginSpec[Any]:
    """The plugin called `name`, whatever its kind, or an error suggesting the closest."""
    from arbench.plugin.registry import registry

    found = registry().find(name)
    if found is None:
        names = [spec.name for each in Kind for spec in registry().of_kind(each)]
        raise UsageError(f"'{name}' is neither a kind ({', '.join(each.value for each in Kind)})"
                         f" nor a plugin name.{did_you_mean(name, names)}")
    return found


def plugin_parameters(spec: PluginSpec[Any]) -> list[tuple[str, str, str, str]]:
    """A plugin's declared parameters: (key, type and range, default, description)."""
    from arbench.plugin.params import describe

    schema = spec.load().Params
    return [(key, describe(field), repr(field.default), field.description or "")
            for key, field in schema.model_fields.items()]


def train(model: str, dataset: str, out: Path | None = None, seed: int = 0,
          options: Sequence[str] = (), data_dir: Path | None = None,
          device: str | None = None) -> Path:
    """Train `model` on `dataset` with the recipe's ``KEY=VALUE`` `options` (``DATASET.KEY``
    ones go to the dataset) on `device` (default cuda when available) and write its
    verified checkpoint: the shipped one unless `out` is given. Under torchrun every
    process runs this and rank 0 writes (`arbench.training.distributed`)."""
    from arbench.plugin.registry import registry
    from arbench.plugin.specs import DatasetSpec, ModelSpec
    from arbench.run.flags import parse_assignments
    from arbench.run.runner import resolve_device, seed_everything
    from arbench.training import distributed

    model_spec = registry().get(ModelSpec, model)
    dataset_spec = registry().get(DatasetSpec, dataset)
    parsed = parse_assignments(list(options), "--set")
    if out is None and data_dir is not None:
        raise UsageError("give --out PATH for a checkpoint of your own data")
    try:
        device = resolve_device(device if device is not None else parsed.get("device"))
        with distributed.process_group(device) as rank_device:
            parsed["device"] = rank_device
            prefix = f"{dataset}."
            dataset_params = {key.removeprefix(prefix): parsed.pop(key)
                              for key in [key for key in parsed if key.startswith(prefix)]}
            target = out or model_spec.checkpoint_path(dataset, {})
            if target is None:
                raise UsageError(f"{model} ships no checkpoint to rebuild; give --out PATH")
            if data_dir:
                dataset_params["data_dir"] = str(data_dir.resolve())
            data = dataset_spec.load()(**dataset_params)
            data.name = dataset
            seed_everything(seed)
            return model_spec.load().train(data, out=target, seed=seed, family=model, **parsed)
    except (ValueError, ArbenchError) as error:  # bad options, data or shape
        raise UsageError(f"{model} on {dataset}: {error}") from error


def is_main_process() -> bool:
    """Whether this process prints: rank 0 of a torchrun job, or a lone process."""
    from arbench.training.distributed import is_main

    return is_main()


def exec_torchrun(nproc: int, train_args: list[str]) -> NoReturn:
    """Replace this process by ``torchrun --standalone --nproc_per_node N -m arbench
    train ...`` (torch's own launcher, run by this Python)."""
    import os
    import sys

    from arbench.training.distributed import launched

    if launched():
        raise UsageError("--nproc inside torchrun: give one or the other")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", "-m", "arbench", "train", *train_args]
    sys.stdout.flush()
    os.execv(sys.executable, command)


def import_released(model: str, source: Path, out: Path, options: Sequence[str] = ()) -> Path:
    """Convert another project's released weights under `source` into an arbench
    checkpoint (a bank folder) at `out`, mapping every parameter or refusing."""
    from arbench.plugin.registry import registry
    from arbench.plugin.specs import ModelSpec
    from arbench.run.flags import parse_assignments

    if not source.exists():
        raise UsageError(f"{source} does not exist; give the folder of the released files "
                         "as downloaded")
    if source.is_dir() and not any(source.iterdir()):
        raise UsageError(f"{source} is empty; give the folder of the released files as "
                         "downloaded")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is an existing file; the import writes a folder (a "
                         "bank of checkpoints): give a new path")
    model_class = registry().get(ModelSpec, model).load()
    try:
        return model_class.import_released(source, out, family=model,
                                           **parse_assignments(list(options), "--set"))
    except ValueError as error:
        raise UsageError(str(error)) from error
    except OSError as error:  # an unwritable --out, a full disk
        raise UsageError(f"cannot write {error.filename or out} ({error.strerror or error}); "
                         "give a writable --out with free space") from error
