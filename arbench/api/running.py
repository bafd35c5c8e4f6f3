"""Running: a request's grids planned, fingerprinted and executed into a run folder."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from arbench.errors import UsageError
from arbench.run.flags import MAX_CELLS

if TYPE_CHECKING:
    from arbench.results.record import Record
    from arbench.results.store import Store
    from arbench.run.cell import Cell
    from arbench.run.executor import Executor
    from arbench.run.grid import GridSpec
    from arbench.run.suite import Suite

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
            sweep: Sequence[str] = (), data_dir: Path | None = None, baselines: bool = True,
            data_file: Path | None = None) -> RunRequest:
    """The grids the command line asks for: one of a `suite` (a name or its suite.yaml),
    a `grid` file, or `tasks` with `samplers` and the rest; ``--budget`` and ``--seed``
    replace a file's lists, ``--set``, ``--sweep``, ``--data-dir`` and ``--data-file`` are
    layered on every grid. The suite file is parsed here, once."""
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
    grids = [each.with_overrides(set_, sweep, data_dir, baselines, budget_list, seed_list,
                                  data_file)
             for each in grids]
    return RunRequest(tuple(grids), check_run_name(name or grids[0].run_name()), loaded)


@dataclass
class RunOutcome:
    """Where a run's records are, the keys of its cells, how many it ran, and how each
    ended."""

    store: Store
    keys: frozenset[str]
    ran: int
    device: str
    suite: Suite | None = None
    statuses: Counter[str] = field(default_factory=Counter)
    damaged: dict[Path, str] = field(default_factory=dict)
    uncertified: dict[str, str] = field(default_factory=dict)  # sampler: why, to warn once

    @property
    def cells(self) -> int:
        """The run's cells, finished before or now."""
        return len(self.keys)

    @property
    def failed(self) -> int:
        """Cells that failed in this run (a rerun retries them)."""
        return self.statuses["failed"]


def run(plan: RunRequest, results_dir: Path, *, device: str | None = None,
        executor: str | None = None, jobs: int = 1, executor_options: Sequence[str] = (),
        force: bool = False, wait: bool = False, timing_repeats: int | None = None,
        max_cells: int = MAX_CELLS, on_start: Callable[[RunOutcome], None] | None = None,
        on_record: OnRecord | None = None) -> RunOutcome:
    """Plan `plan`'s grids, fingerprint what each cell reads, and run every cell not yet
    finished by today's code into ``results_dir/NAME``, timing `timing_repeats` rounds of
    each sampler call (default: the suite's, else 3); `on_start` sees the plan,
    `on_record` each record as it is stored."""
    from arbench.plugin.registry import registry
    from arbench.results.store import Store
    from arbench.run.executor import CellJob
    from arbench.run.plan import plan as plan_cells
    from arbench.run.provenance import is_current, take
    from arbench.run.runner import resolve_device
    from arbench.run.suite import TIMING_REPEATS

    try:
        planned = plan_cells(plan.grids, registry(), max_cells)
        device_name = resolve_device(device)
        engine = _executor(executor, jobs, executor_options)
        if timing_repeats is None:
            timing_repeats = plan.suite.timing_repeats if plan.suite else TIMING_REPEATS
        if timing_repeats < 0:
            raise UsageError(f"--timing-repeats {timing_repeats}: give 0 (no timing) or more")
    except ValueError as error:
        raise UsageError(str(error)) from None
    store = Store(results_dir / plan.name)
    try:
        with store.writer(wait=wait):
            cells = take(planned, registry())
            outcome = RunOutcome(store, frozenset(cell.key for cell in cells), 0, device_name,
                                 plan.suite)
            if store.cells_dir.is_dir():
                outcome.damaged = store.damaged_records()
            outcome.uncertified = uncertified_claims(cells, results_dir)
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


def uncertified_claims(cells: Sequence[Cell], results_dir: Path) -> dict[str, str]:
    """The samplers of `cells` whose claim of exactness has no passing certificate of their
    code in `results_dir`/certificates, each with what to do about it."""
    from arbench.plugin.registry import registry
    from arbench.plugin.specs import SamplerSpec
    from arbench.results.agreement import CLAIMS
    from arbench.results.certificate import CERTIFICATES, current_certificate

    found = {}
    for name, code in {(c.sampler, c.inputs.code.get(f"sampler:{c.sampler}")) for c in cells}:
        claim = registry().get(SamplerSpec, name).load().exactness
        if claim not in CLAIMS or code is None:
            continue
        certificate = current_certificate(results_dir, name, code)
        if certificate is None or not certificate.passed:
            verdict = "has no certificate" if certificate is None else "FAILED its certificate"
            found[name] = (f"sampler '{name}' claims '{claim}' but its code {verdict} in "
                           f"{results_dir / CERTIFICATES}; the tables say so (`arbench certify "
                           f"{name} --results-dir {results_dir}`)")
    return dict(sorted(found.items()))


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
