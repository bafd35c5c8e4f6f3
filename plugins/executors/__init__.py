"""Built-in executors (`arbench run --executor NAME`)."""

from arbench import ExecutorSpec, hookimpl

_MODULE = "arbench_plugins.executors"


@hookimpl
def arbench_executors() -> list[ExecutorSpec]:
    """The built-in executors: this process or local workers, Ray, SLURM."""
    return [
        ExecutorSpec(name="local", factory=f"{_MODULE}.local:Local", default=True,
                     description="This process, or -j N worker processes (one device each: "
                                 "cuda:0..N-1 or the CPU, cores split between them)"),
        ExecutorSpec(name="ray", factory=f"{_MODULE}.ray_cluster:RayExecutor", extra="ray",
                     description="Each cell a Ray task with its CPU/GPU request; an existing "
                                 "cluster (address=...) or a local one"),
        ExecutorSpec(name="slurm", factory=f"{_MODULE}.slurm:Slurm", extra="slurm",
                     description="SLURM job arrays through submitit (partition, time, account, "
                                 "GPUs per cell)"),
    ]
