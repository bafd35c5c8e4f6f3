"""Reading runs: records, reports, the compare gate and a suite's leaderboard."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from arbench.api.running import OnRecord, RunOutcome, RunRequest, run
from arbench.errors import UsageError

if TYPE_CHECKING:
    from arbench.report.build import Report, TaskViews
    from arbench.results.compare import Comparison
    from arbench.results.record import Record


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
    """What `report` made: the markdown, the damaged records left out, the files written,
    and the damaged artifacts (saved samples) its reporters left out."""

    markdown: str
    damaged: dict[Path, str]
    migrated: list[Path]
    written: dict[str, list[Path]]
    damaged_artifacts: dict[Path, str]


def report(run_dirs: Sequence[Path], formats: Sequence[str] = (), out: Path | None = None,
           csv: Path | None = None) -> Reported:
    """The report of one or more run folders (merged): its markdown, the long CSV at
    `csv`, and each reporter in `formats` written into `out` (default RUN/report, or
    results/report-RUN1+RUN2 beside merged runs)."""
    from arbench.plugin.registry import registry
    from arbench.plugin.specs import ReporterSpec
    from arbench.report.build import markdown_report

    reporters = {name: registry().get(ReporterSpec, name) for name in dict.fromkeys(formats)}
    read = read_records(run_dirs)
    built = build(run_dirs, read.records)
    folder = out or (run_dirs[0] / "report" if len(run_dirs) == 1 else
                     run_dirs[0].parent / ("report-" + "+".join(run.name for run in run_dirs)))
    written: dict[str, list[Path]] = {}
    try:
        if csv is not None:
            written["long table"] = [built.write_csv(csv)]
        if reporters:
            if folder.exists() and not folder.is_dir():
                raise UsageError(f"--out {folder} is a file; give a folder for the report files")
            folder.mkdir(parents=True, exist_ok=True)
        written |= {name: spec.load()().write(built, folder) for name, spec in reporters.items()}
    except OSError as error:  # a full disk or an unwritable folder: no partial files
        raise UsageError(f"cannot write the report ({error.strerror or error}: "
                         f"{error.filename or folder}); free space or give another --out / "
                         "--csv (the run's records are untouched)") from None
    return Reported(markdown_report(built), read.damaged, read.migrated, written,
                    built.damaged)


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

    run_dir = outcome.store.run_dir
    records = read_records([run_dir]).records
    built = build([run_dir], records)
    written = [built.write_csv(run_dir / "report.csv")]
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
    from arbench.report.leaderboard import write_leaderboard
    from arbench.run.suite import find_suite, load_suite

    suite = load_suite(find_suite(name))
    outcome, removed = None, []
    if rerun:
        outcome = run(RunRequest(tuple(suite.grids), suite.folder.name, suite),
                      suite.folder.parent, force=True, on_start=on_start, on_record=on_record)
        removed = [path for path in (suite.folder / "cells").glob("*.json")
                   if path.stem not in outcome.keys]
        for path in removed:
            path.unlink()
    records = read_records([suite.folder]).records
    if not records:
        raise UsageError(f"the suite '{suite.name}' has no committed cells; "
                         f"`arbench leaderboard {name} --rerun` computes them")
    return outcome, removed, write_leaderboard(suite, records, task_views(), readme)
