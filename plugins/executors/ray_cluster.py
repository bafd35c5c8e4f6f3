"""The Ray executor: each cell a Ray task with its own CPU/GPU request.

``address=None`` starts a local Ray instance sized to this machine (and stops
it afterwards); ``address="auto"`` or ``"ray://head:10001"`` joins a running
cluster. Each task asks for `cpus` CPUs (its torch threads) and `gpus` GPUs; Ray
places tasks where those are free and sets CUDA_VISIBLE_DEVICES, so a task
with a GPU runs on ``cuda``. Tasks write their records to the shared results
folder themselves (it must be on a file system every node sees); a task whose
worker dies is recorded as failed here. At most `jobs` tasks are in flight
(0: as many as the cluster takes).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from arbench import Cell, CellJob, Executor, Param, Record


def _run_cell(job: CellJob, cell: Cell) -> Record:
    return job(cell)


class RayExecutor(Executor):
    class Params(Executor.Params):
        jobs: int = Param(0, "cells in flight at once (0: all)", ge=0)
        address: str | None = Param(None, "Ray cluster address (None: start a local one)")
        cpus: float = Param(1, "CPUs per cell", gt=0)
        gpus: float = Param(0, "GPUs per cell", ge=0)

    params: Params

    def run(self, cells: list[Cell], job: CellJob,
            on_record: Callable[[Cell, Record], None]) -> None:
        """Run each cell as a Ray task with its CPU and GPU request, on an existing cluster
        or a local one."""
        try:
            import ray
        except ImportError:
            raise ValueError("the ray executor needs Ray: pip install 'arbench[ray]'") from None
        if not cells:
            return
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=self.params.address, include_dashboard=False,
                     log_to_driver=False, configure_logging=False,
                     # workers import arbench from this environment, as the driver does
                     runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}})
        gpus = self.params.gpus
        task = ray.remote(num_cpus=self.params.cpus, num_gpus=gpus, max_retries=0)(_run_cell)
        job = replace(job, threads=max(1, int(self.params.cpus)),
                      device="cuda" if gpus else "cpu")
        limit = self.params.jobs or len(cells)
        waiting, running = list(cells), dict[Any, Any]()
        try:
            while waiting or running:
                while waiting and len(running) < limit:
                    cell = waiting.pop(0)
                    running[task.remote(job, cell)] = cell
                (done,), _ = ray.wait(list(running), num_returns=1)
                cell = running.pop(done)
                try:
                    record = ray.get(done)
                except ray.exceptions.RayError as error:
                    record = job.failed(cell, f"the Ray task failed: {type(error).__name__}: "
                                              f"{str(error).splitlines()[0]}; rerun to retry it")
                on_record(cell, record)
        finally:
            if started_here:
                ray.shutdown()
