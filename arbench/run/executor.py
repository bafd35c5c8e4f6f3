"""Where cells run: `CellJob`, plain data that runs cells of one run in whatever process
calls it (a worker, a Ray task, a SLURM job), and the `Executor` base of the executor
plugins, which send cells to them."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from arbench.plugin.contracts import Configurable
from arbench.results.record import Record
from arbench.results.store import Store
from arbench.run.cell import Cell
from arbench.run.runner import Runner


@dataclass(frozen=True)
class CellJob:
    """Runs cells of one run in whatever process calls it and stores their records.

    Plain data, so executors can send it to worker processes, Ray tasks or
    SLURM jobs; each process builds its registry and `Runner` once (models and
    datasets stay cached across its cells). `threads` sets torch's intra-op
    threads there, so workers x threads stay within the machine's cores.
    """

    run_dir: str
    run_name: str
    device: str
    threads: int | None = None
    timing_repeats: int = 3

    def __call__(self, cell: Cell) -> Record:
        return _process_runner(self).run_one(cell)

    def failed(self, cell: Cell, reason: str) -> Record:
        """Store and return the failed record of a cell whose worker died (written by
        the executor's process, which survives it)."""
        from arbench.plugin.registry import registry

        runner = Runner(registry(), Store(Path(self.run_dir)), self.device, self.run_name,
                        self.timing_repeats)
        return runner.store_failed(cell, reason)


_RUNNERS: dict[CellJob, Runner] = {}


def _process_runner(job: CellJob) -> Runner:
    """This process's runner for `job` (built on first use)."""
    if job not in _RUNNERS:
        from arbench.plugin.registry import registry

        if job.threads is not None:
            import torch

            torch.set_num_threads(job.threads)
        _RUNNERS[job] = Runner(registry(), Store(Path(job.run_dir)), job.device, job.run_name,
                               job.timing_repeats)
    return _RUNNERS[job]


class Executor(Configurable):
    """Runs a grid's cells somewhere: this process, worker processes, a cluster.

    `job` runs one cell wherever it is called and stores the cell's record (it
    is plain data, so it pickles to a worker process, a Ray task or a SLURM
    job); `run` calls it for every cell and `on_record(cell, record)` here as
    each finishes. A cell whose worker dies gets ``job.failed(cell, reason)``
    written here, and the rest of the grid goes on.
    """

    @abstractmethod
    def run(self, cells: list[Cell], job: CellJob,
            on_record: Callable[[Cell, Record], None]) -> None:
        """Run `job` on every cell wherever this executor puts it, and call
        `on_record(cell, record)` here as each finishes."""


def forget_runners() -> None:
    """Drop this process's runners and the datasets and models they keep: a long-lived
    process (a notebook, a test session) that runs many grids frees their memory."""
    _RUNNERS.clear()
