"""arbench as a library: what the CLI, benchmarks and tests call.

Each `arbench` command is a thin wrapper over one function here::

    from arbench import api
    from arbench.run.grid import GridSpec

    grid = GridSpec(tasks=["unconditional"], samplers=["ancestral"], datasets=["digits"])
    outcome = api.run([grid], "my-run", Path("results"))
    report = api.report([outcome.store.run_dir])
    verdict = api.compare(Path("leaderboards/smoke"), outcome.store.run_dir)

Bad input is an `arbench.errors.ArbenchError` whose message says what to do; the
functions print nothing themselves (pass `on_start`/`on_record` to show progress).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from arbench.errors import ArbenchError, UsageError
from arbench.results.record import Record
from arbench.results.store import Store, atomic_write
from arbench.run.suite import MAX_CELLS

if TYPE_CHECKING:
    from arbench.plugin.specs import TableLayout
    from arbench.report.build import Report
    from arbench.report.reporter import Reporter
    from arbench.results.compare import Comparison
    from arbench.run.executor import Executor
    from arbench.run.grid import Cell, GridSpec
    from arbench.run.suite import Suite

OnRecord = Callable[["Cell", Record], None]


@dataclass
class RunOutcome:
    """Where a run's records are, how many cells it had and ran, and how each ended."""

    store: Store
    cells: int
    ran: int
    device: str
    statuses: Counter[str] = field(default_factory=Counter)
    damaged: dict[Path, str] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return self.statuses["failed"]


def run(grids: list[GridSpec], run_name: str, results_dir: Path, *,
        device: str | None = None, executor: str = "local", jobs: int = 1,
        executor_options: list[str] | None = None, force: bool = False,
        suite_path: Path | None = None, wait: bool = False, timing_repeats: int = 3,
        max_cells: int = MAX_CELLS, on_start: Callable[[RunOutcome], None] | None = None,
        on_record: OnRecord | None = None) -> RunOutcome:
    """Expand `grids` and run every cell not finished yet (or whose record is stale)
    into ``results_dir/run_name``; `on_start` sees the plan, `on_record` each record."""
    from arbench.plugin.registry import registry
    from arbench.run.executor import CellJob
    from arbench.run.provenance import is_current
    from arbench.run.runner import resolve_device
    from arbench.run.suite import cells_of

    try:
        cells = cells_of(grids, registry(), max_cells)
        device_name = resolve_device(device)
        engine = executor_of(executor, jobs, executor_options or [])
        if timing_repeats < 1:
            raise UsageError(f"--timing-repeats {timing_repeats}: give at least 1")
    except ValueError as error:
        raise UsageError(str(error)) from None
    store = Store(results_dir / run_name)
    try:
        with store.writer(wait=wait):
            outcome = RunOutcome(store, len(cells), 0, device_name)
            if store.cells_dir.is_dir():
                for _ in store.records():  # finds the damaged ones
                    pass
                outcome.damaged = dict(store.damaged)
            store.write_meta("grid.json", {"grids": [g.__dict__ for g in grids],
                                           "device": device_name})
            if suite_path is not None:
                store.adopt_suite(suite_path)
            reg = registry()
            todo = store.pending(cells, force=force,
                                 current=lambda record: is_current(record, reg))
            outcome.ran = len(todo)
            if on_start is not None:
                on_start(outcome)

            def done(cell: Cell, record: Record) -> None:
                outcome.statuses[record.status] += 1
                if on_record is not None:
                    on_record(cell, record)

            engine.run(todo, CellJob(str(store.run_dir.resolve()), run_name, device_name,
                                     timing_repeats=timing_repeats), done)
    except OSError as error:  # an unwritable or full results folder
        raise UsageError(f"cannot write the run folder {store.run_dir}: "
                         f"{error.strerror or error}; give a writable --results-dir with free "
                         "space (finished records are kept)") from None
    return outcome


def executor_of(name: str, jobs: int, options: list[str]) -> Executor:
    """The executor plugin `name` built with ``jobs`` and its KEY=VALUE options."""
    from arbench.plugin.registry import registry
    from arbench.run.flags import parse_assignments

    if jobs < 1:
        raise UsageError(f"--jobs {jobs}: give at least 1")
    params = {"jobs": jobs, **parse_assignments(options, "--executor-set")}
    engine: Executor = registry().get("executor", name).load()(**params)
    return engine


def layouts() -> dict[str, TableLayout]:
    """Paper-style table layouts of the installed tasks: by task name, and by
    ``task:modality`` where a modality has a table of its own."""
    from arbench.plugin.registry import registry

    found: dict[str, TableLayout] = {}
    for spec in registry().all("task"):
        if spec.table:
            found[spec.name] = spec.table
        found |= {f"{spec.name}:{modality}": layout
                  for modality, layout in spec.modality_tables.items()}
    return found


def read_records(run_dirs: Iterable[Path]) -> tuple[list[Record], dict[Path, str]]:
    """The valid records of every run folder, and the damaged files with their reasons."""
    stores = [Store(run_dir) for run_dir in run_dirs]
    records = [record for store in stores for record in store.records()]
    return records, {path: why for store in stores for path, why in store.damaged.items()}


def report(run_dirs: list[Path], records: list[Record] | None = None) -> Report:
    """The report (paper tables, summary, problems) of one or more run folders."""
    from arbench.report.build import build_report

    if records is None:
        records, _ = read_records(run_dirs)
    return build_report(records, layouts(), run_dirs)


def write_report(built: Report, formats: list[str], folder: Path) -> dict[str, list[Path]]:
    """Write `built` with each reporter in `formats` into `folder`; the files by format."""
    from arbench.plugin.registry import registry

    reporters: dict[str, Reporter] = {name: registry().get("reporter", name).load()()
                                      for name in formats}
    if reporters:
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"--out {folder} is a file; give a folder for the report files")
        folder.mkdir(parents=True, exist_ok=True)
    return {name: reporter.write(built, folder) for name, reporter in reporters.items()}


def run_report(store: Store, suite_path: Path | None = None) -> tuple[str, list[Path]]:
    """What `arbench run` shows at the end: the markdown tables (after a suite's published
    figures), with the long CSV and the figures the run's tasks ask for written beside
    the records. Returns the markdown and the files written."""
    from arbench.plugin.registry import registry
    from arbench.report.build import markdown_report
    from arbench.report.leaderboard import references_markdown
    from arbench.run.suite import load_suite

    records, _ = read_records([store.run_dir])
    built = report([store.run_dir], records)
    written = [atomic_write(store.run_dir / "report.csv",
                            lambda path: built.tidy().to_csv(path, index=False))]
    references = references_markdown(load_suite(suite_path), built) if suite_path else ""
    ran = {record.task for record in records if record.status == "ok"}
    figures = [name for spec in registry().all("task") if spec.name in ran
               for name in spec.figures]
    for name in dict.fromkeys(figures):
        written += registry().get("reporter", name).load()().write(built, store.run_dir)
    return references + markdown_report(built), written


def compare(baseline: Path, current: Path, suite: Path | None = None,
            min_effects: list[str] | None = None, alpha: float | None = None
            ) -> Comparison:
    """Match the two runs' cells by key and judge every metric (`arbench.results.compare`); the
    gate is the suite's (``suite``, else BASELINE/suite.yaml) unless overridden."""
    from arbench.results.compare import compare_records
    from arbench.run.suite import gate

    records: dict[str, list[Record]] = {}
    damaged: dict[Path, str] = {}
    for name, folder in (("baseline", baseline), ("current", current)):
        records[name], found = read_records([folder])
        damaged |= found
    if damaged:
        reasons = "; ".join(list(damaged.values())[:5])
        raise UsageError(f"{len(damaged)} record(s) cannot be read, so the runs cannot be "
                         f"compared ({reasons}); rerun arbench run on the run that holds them")
    if suite is not None and not suite.is_file():
        raise UsageError(f"suite file {suite} does not exist")
    from arbench.run.suite import load_suite

    suite_file = suite or (baseline / "suite.yaml")
    gated = load_suite(suite_file) if suite_file.is_file() else None
    effects, level = (gate(min_effects or [], alpha, gated.min_effects, gated.alpha) if gated
                      else gate(min_effects or [], alpha))
    return compare_records(records["baseline"], records["current"], effects, level)


def remove_stale_cells(suite: Suite) -> list[Path]:
    """Delete the committed cells `suite` no longer has (after a rerun); the paths."""
    from arbench.plugin.registry import registry
    from arbench.run.suite import cells_of

    current = {cell.key for cell in cells_of(suite.grids, registry())}
    stale = [path for path in (suite.folder / "cells").glob("*.json")
             if path.stem not in current]
    for path in stale:
        path.unlink()
    return stale


def leaderboard(suite: Suite, readme: Path) -> list[Path]:
    """Render `suite`'s leaderboard (its README and the README block) from its cells."""
    from arbench.report.leaderboard import write_leaderboard

    records, _ = read_records([suite.folder])
    return write_leaderboard(suite, records, layouts(), readme)


def train(model: str, dataset: str, out: Path | None = None, seed: int = 0,
          options: dict[str, Any] | None = None, data_dir: Path | None = None,
          device: str | None = None) -> Path:
    """Train `model` on `dataset` with the recipe's options (``DATASET.KEY`` ones go to the
    dataset) on `device` (default cuda when available) and write its verified
    checkpoint: the shipped one unless `out` is given. Under torchrun every process
    runs this and rank 0 writes (`arbench.training.distributed`)."""
    from arbench.plugin.registry import registry
    from arbench.run.runner import resolve_device, seed_everything
    from arbench.training import distributed

    model_spec = registry().get("model", model)
    dataset_spec = registry().get("dataset", dataset)
    options = dict(options or {})
    if out is None and data_dir is not None:
        raise UsageError("give --out PATH for a checkpoint of your own data")
    try:
        device = resolve_device(device if device is not None else options.get("device"))
        with distributed.process_group(device) as rank_device:
            options["device"] = rank_device
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
            return model_class.train(data, out=out, seed=seed, **options)
    except (ValueError, ArbenchError) as error:  # bad options, data or shape
        raise UsageError(f"{model} on {dataset}: {error}") from error


def exec_torchrun(nproc: int, train_args: list[str]) -> NoReturn:
    """Replace this process by ``torchrun --standalone --nproc_per_node N -m arbench
    train ...`` (torch's own launcher, run by this Python)."""
    import os
    import sys

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UsageError("--nproc inside torchrun: give one or the other")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", "-m", "arbench", "train", *train_args]
    sys.stdout.flush()
    os.execv(sys.executable, command)


def import_released(model: str, source: Path, out: Path,
                    options: dict[str, Any] | None = None) -> Path:
    """Convert another project's released weights under `source` into an arbench
    checkpoint (a bank folder) at `out`, mapping every parameter or refusing."""
    from arbench.plugin.registry import registry

    if not source.exists():
        raise UsageError(f"{source} does not exist; give the folder of the released files "
                         "as downloaded")
    if source.is_dir() and not any(source.iterdir()):
        raise UsageError(f"{source} is empty; give the folder of the released files as "
                         "downloaded")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is an existing file; the import writes a folder (a "
                         "bank of checkpoints): give a new path")
    model_class = registry().get("model", model).load()
    try:
        return model_class.import_released(source, out, **(options or {}))
    except ValueError as error:
        raise UsageError(str(error)) from error
    except OSError as error:  # an unwritable --out, a full disk
        raise UsageError(f"cannot write {error.filename or out} ({error.strerror or error}); "
                         "give a writable --out with free space") from error
