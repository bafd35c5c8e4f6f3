"""Progress on the terminal or in a log while `arbench.api.run` works: a bar on a terminal,
one plain line per finished cell elsewhere, and Ctrl-C ending the command with 130."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from arbench.cli.app import console, fail, warn_damaged

if TYPE_CHECKING:
    from arbench import api

EXIT_CELLS_FAILED = 3  # exit codes: 1 a regression (compare), 2 bad input, 130 interrupted


class Progress:
    """Progress of a run: a bar on a terminal, else one plain line per finished cell
    (logs of CI, SLURM, ``| tee``); Ctrl-C ends it with exit 130, finished cells kept.
    Pass `started` and `done` to `arbench.api.run` inside `shown`."""

    def __init__(self, executor: str | None = None, jobs: int = 1) -> None:
        self.executor, self.jobs = executor, jobs
        self.total = 0
        self.statuses: Counter[str] = Counter()
        self.started_at = time.monotonic()
        self.terminal = console.is_terminal
        self.bar: Any = None

    @contextmanager
    def shown(self) -> Iterator[None]:
        """Show the bar (on a terminal) while the block runs; Ctrl-C exits 130."""
        from rich.progress import (
            BarColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bar

        columns = [TextColumn("{task.description}"), BarColumn(),
                   TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                   TextColumn("eta"), TimeRemainingColumn()]
        with Bar(*columns, console=console, transient=False,
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

    def started(self, plan: api.RunOutcome) -> None:
        """The plan: how many cells, how many already finished, where the rest run."""
        warn_damaged(plan.damaged, "ignored; their cells are recomputed")
        for why in plan.uncertified.values():
            console.print(f"[yellow]warning:[/] {why}", highlight=False, soft_wrap=True)
        at_once = f", {self.jobs} at a time" if self.jobs > 1 else ""
        where = f" ({self.executor}{at_once})" if self.executor or at_once else ""
        console.print(f"run [bold]{plan.store.run_dir.name}[/]: {plan.cells} cells, "
                      f"{plan.cells - plan.ran} already finished, {plan.ran} to run on "
                      f"{plan.device}{where}", highlight=False)
        self.total = plan.ran

    def done(self, cell: Any, record: api.Record) -> None:
        """One finished cell: a line for a skipped or failed one (and, in a log, every one)."""
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
            eta = (time.monotonic() - self.started_at) / finished * (self.total - finished)
            self.bar.console.print(
                f"[{finished}/{self.total}] ok {cell.label()} "
                f"{record.cost.wall_time_s or 0:.1f}s, eta {eta:.0f}s", highlight=False,
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
