"""A run with progress on the terminal or in a log: what `arbench run` and
`arbench leaderboard --rerun` show while `arbench.api.run` works."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from arbench.cli.app import console, fail, print_out, warn_damaged
from arbench.results.record import Record

if TYPE_CHECKING:
    from arbench.results.store import Store
    from arbench.run.grid import Cell, GridSpec

EXIT_CELLS_FAILED = 3  # exit codes: 1 a regression (compare), 2 bad input, 130 interrupted


def execute(grids: list[GridSpec], run_name: str, results_dir: Path, *,
            suite_path: Path | None = None, **options: Any) -> Store:
    """Run `grids` through `arbench.api.run` with progress, then print the report: what
    `arbench run` and `arbench leaderboard --rerun` do. Exits 3 when cells failed."""
    from arbench import api
    from arbench.errors import ArbenchError

    def started(plan: api.RunOutcome) -> None:
        warn_damaged(plan.damaged, "ignored; their cells are recomputed")
        jobs = options.get("jobs", 1)
        console.print(f"run [bold]{run_name}[/]: {plan.cells} cells, "
                      f"{plan.cells - plan.ran} already finished, {plan.ran} to run on "
                      f"{plan.device} ({options.get('executor', 'local')}"
                      f"{f', {jobs} at a time' if jobs > 1 else ''})", highlight=False)
        progress.total = plan.ran

    progress = _Progress()
    try:
        with progress.shown():
            outcome = api.run(grids, run_name, results_dir, suite_path=suite_path,
                              on_start=started, on_record=progress.done, **options)
        text, written = api.run_report(outcome.store, suite_path)
    except ArbenchError as error:
        fail(str(error))
    warn_damaged(outcome.store.damaged, "left out of the report")
    print_out(text)
    for path in written[1:]:
        console.print(f"wrote {path}", highlight=False)
    if outcome.failed:
        console.print(f"[red]{outcome.failed} cell(s) failed[/] (their records say why; "
                      "a rerun retries them)", highlight=False)
        raise typer.Exit(EXIT_CELLS_FAILED)
    return outcome.store


class _Progress:
    """Progress of a run: a bar on a terminal, else one plain line per finished cell
    (logs of CI, SLURM, ``| tee``); Ctrl-C ends it with exit 130, finished cells kept."""

    def __init__(self) -> None:
        self.total = 0
        self.statuses: Counter[str] = Counter()
        self.started = time.monotonic()
        self.terminal = console.is_terminal
        self.bar: Any = None

    @contextmanager
    def shown(self) -> Iterator[None]:
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
        with Progress(*columns, console=console, transient=False,
                      disable=not self.terminal) as self.bar:
            self.task = self.bar.add_task("grid", total=None)
            try:
                with _ctrl_c_noted():
                    yield
                    if _INTERRUPTED.is_set():
                        raise KeyboardInterrupt
            except KeyboardInterrupt:
                fail(f"interrupted: {sum(self.statuses.values())} of {self.total} cells "
                     "finished and stored; run the same command again to resume", code=130)

    def done(self, cell: Cell, record: Record) -> None:
        if _INTERRUPTED.is_set():  # a Ctrl-C whose KeyboardInterrupt was swallowed
            raise KeyboardInterrupt
        self.statuses[record.status] += 1
        finished = sum(self.statuses.values())
        if record.status != "ok":
            colour = "yellow" if record.status == "skipped" else "red"
            self.bar.console.print(f"[{colour}]{record.status}[/] {cell.label()}: "
                                   f"{record.reason}", highlight=False,
                                   soft_wrap=not self.terminal)
        elif not self.terminal:
            eta = (time.monotonic() - self.started) / finished * (self.total - finished)
            self.bar.console.print(
                f"[{finished}/{self.total}] ok {cell.label()} "
                f"{record.wall_time_s or 0:.1f}s, eta {eta:.0f}s", highlight=False,
                soft_wrap=True)
        self.bar.update(self.task, total=self.total, advance=1)


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
