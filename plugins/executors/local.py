"""The local executor: this process, or N worker processes on this machine.

With ``jobs=1`` cells run here, one after the other. With ``jobs=N`` each of N
worker processes (spawned, not forked: torch and forks do not mix) takes one
cell at a time from its own queue and sends its record back on its own pipe, so
N cells run at once. Worker i gets
``cuda:i`` (modulo the GPUs there are) when the run is on CUDA, else the CPU,
and cores // N torch threads, because oversubscribed cores cost far more than
they give (4 threads on 2 cores measured 4-8x slower than 2).

A worker that dies mid-cell (killed, out of memory, a segfault in an
extension) is noticed here: its cell gets a failed record saying so, a fresh
worker takes its place, and the grid goes on; a rerun retries that cell.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from arbench import Cell, CellJob, Executor, Param, Record, Store, exit_with_parent, usable_cores

POLL_SECONDS = 0.2


def worker_jobs(job: CellJob, workers: int) -> list[CellJob]:
    """One job per worker: its own device and an equal share of the cores."""
    devices = [job.device] * workers
    if job.device.startswith("cuda"):
        import torch

        count = max(torch.cuda.device_count(), 1)
        devices = [f"cuda:{i % count}" for i in range(workers)]
    threads = max(1, usable_cores() // workers)
    return [replace(job, device=device, threads=threads) for device in devices]


def _serve(job: CellJob, inbox: Any, outbox: Any, slot: int, parent: int) -> None:
    """A worker's loop: run each cell it is given until it is given None, sending each
    record back on its own pipe. Ctrl-C is the parent's to handle (it stops the workers),
    and a worker whose parent is gone (killed with -9, say) exits at once instead of
    running on unseen."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent(parent)
    for cell in iter(inbox.get, None):
        outbox.send((slot, job(cell)))


@dataclass
class _Worker:
    process: Any
    inbox: Any
    results: Any  # the reading end of this worker's own pipe
    cell: Cell | None = None


class Local(Executor):
    """`jobs`: cells at a time (1: in this process)."""

    class Params(Executor.Params):
        jobs: int = Param(1, "worker processes (1: run in this process)", ge=1)

    params: Params

    def run(self, cells: list[Cell], job: CellJob,
            on_record: Callable[[Cell, Record], None]) -> None:
        """Run the cells here (one job) or in worker processes, one device and a share of
        the cores each; a worker that dies gets its cell a failed record and is replaced."""
        workers = min(self.params.jobs, len(cells))
        if workers <= 1:
            for cell in cells:
                on_record(cell, job(cell))
            return
        context = multiprocessing.get_context("spawn")
        jobs = worker_jobs(job, workers)

        def start(slot: int) -> _Worker:
            # One pipe per worker, written without a feeder thread: a worker killed while
            # sending breaks only its own pipe, never a lock the other workers need.
            inbox, (results, outbox) = context.Queue(), context.Pipe(duplex=False)
            process = context.Process(target=_serve,
                                      args=(jobs[slot], inbox, outbox, slot, os.getpid()),
                                      daemon=True, name=f"arbench-worker-{slot}")
            process.start()
            outbox.close()  # the worker holds the writing end
            return _Worker(process, inbox, results)

        pending = deque(cells)
        pool = [start(slot) for slot in range(workers)]

        def feed(slot: int) -> None:
            pool[slot].cell = pending.popleft() if pending else None
            if pool[slot].cell is not None:
                pool[slot].inbox.put(pool[slot].cell)

        for slot in range(workers):
            feed(slot)
        try:
            while any(worker.cell is not None for worker in pool):
                busy = {id(w.results): w for w in pool if w.cell is not None}
                for connection in wait([w.results for w in busy.values()], POLL_SECONDS):
                    worker = busy[id(connection)]
                    try:
                        slot, record = worker.results.recv()
                    except (EOFError, OSError):  # its worker died: _replace_dead sees it
                        continue
                    done, worker.cell = worker.cell, None
                    assert done is not None
                    on_record(done, record)
                    feed(slot)
                self._replace_dead(pool, jobs, start, feed, on_record)
        except BaseException:  # Ctrl-C or SIGTERM: the cells in flight are abandoned
            for worker in pool:
                worker.process.kill()
            raise
        finally:
            for worker in pool:
                worker.inbox.put(None)
            for worker in pool:
                worker.process.join(timeout=10)
                if worker.process.is_alive():
                    worker.process.kill()
                worker.results.close()

    @staticmethod
    def _replace_dead(pool: list[_Worker], jobs: list[CellJob], start: Callable[[int], _Worker],
                      feed: Callable[[int], None],
                      on_record: Callable[[Cell, Record], None]) -> None:
        """Record the cell of each worker that died as failed (unless the worker stored its
        record just before dying), and start a new worker."""
        for slot, worker in enumerate(pool):
            if worker.cell is None or worker.process.is_alive():
                continue
            stored = Store(Path(jobs[slot].run_dir)).read(worker.cell.key)
            if stored is None or stored.provenance.worker.rpartition(":")[2] != str(
                    worker.process.pid):
                reason = (f"the worker process died (exit code {worker.process.exitcode}) "
                          "while running this cell; rerun to retry it")
                stored = jobs[slot].failed(worker.cell, reason)
            on_record(worker.cell, stored)
            worker.results.close()
            pool[slot] = start(slot)
            feed(slot)
