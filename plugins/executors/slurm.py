"""The SLURM executor: cells as a job array, submitted with submitit.

One array task per cell, each asking for `cpus` CPUs, `gpus` GPUs and
`time_min` minutes on `partition` (charged to `account`); at most `jobs` run
at once (0: SLURM's limit). Tasks write their records to the shared results
folder themselves; the submitting process waits, and a task that fails, is
cancelled or runs out of time is recorded as failed with SLURM's reason. Job
logs go to ``RUN/slurm/``. ``cluster="local"`` runs the same array as local
processes through submitit (what the tests use); ``None`` asks submitit to
detect SLURM. See docs/scaling.md for an sbatch-ready example.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from arbench import Cell, CellJob, Executor, Param, Record


class Slurm(Executor):
    class Params(Executor.Params):
        jobs: int = Param(0, "jobs running at once (0: all)", ge=0)
        partition: str | None = Param(None, "SLURM partition")
        account: str | None = Param(None, "SLURM account")
        time_min: int = Param(60, "time limit per job in minutes", ge=1)
        cpus: int = Param(2, "CPUs per job", ge=1)
        gpus: int = Param(0, "GPUs per job", ge=0)
        mem_gb: float | None = Param(None, "memory per job in GB", gt=0)
        cluster: str | None = Param(None, "submitit cluster ('local', 'debug'; None: slurm)")
        folder: str | None = Param(None, "submitit log folder")

    params: Params

    def run(self, cells: list[Cell], job: CellJob,
            on_record: Callable[[Cell, Record], None]) -> None:
        """Run the cells as a SLURM job array through submitit; a job that fails gets its
        cell a failed record."""
        try:
            import submitit
        except ImportError:
            raise ValueError("the slurm executor needs submitit: pip install "
                             "'arbench[slurm]'") from None
        if not cells:
            return
        params = self.params
        folder = Path(params.folder or Path(job.run_dir) / "slurm")
        executor = submitit.AutoExecutor(folder=folder, cluster=params.cluster)
        slurm = {"slurm_partition": params.partition, "slurm_account": params.account,
                 "slurm_array_parallelism": params.jobs or None,
                 "slurm_gpus_per_task": params.gpus or None}
        executor.update_parameters(
            timeout_min=params.time_min, cpus_per_task=params.cpus,
            **({"mem_gb": params.mem_gb} if params.mem_gb else {}),
            **{key: value for key, value in slurm.items() if value is not None})
        job = replace(job, threads=params.cpus, device="cuda" if params.gpus else "cpu")
        submitted = executor.map_array(job, cells)
        for cell, array_task in zip(cells, submitted, strict=True):
            try:
                record = array_task.result()
            except Exception as error:  # submitit raises the task's error, or SLURM's
                first = str(error).strip().splitlines()
                record = job.failed(cell, f"the SLURM task {array_task.job_id} failed: "
                                          f"{type(error).__name__}: {first[-1] if first else ''}"
                                          "; rerun to retry it")
            on_record(cell, record)
