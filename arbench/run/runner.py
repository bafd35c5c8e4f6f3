"""The grid runner: executes cells and records each as it finishes.

Tasks get the cell's sampler wrapped in `arbench.run.checks.CheckedSampler`, so what
a sampler returns is checked against the contract before anything scores it.

A cell that raises is recorded as failed with its error and the grid goes on;
`Incompatible` raised anywhere in a cell records it as skipped. Finished cells
(ok or skipped) are not recomputed unless ``force`` is set. Executors
(`arbench.run.executor`) run it in whatever process a cell lands in.
"""

from __future__ import annotations

import math
import os
import random
import resource
import socket
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError

from arbench import __version__
from arbench.errors import Incompatible
from arbench.plugin.contracts import CellContext, Dataset, Model, Sampler, TaskOutput
from arbench.plugin.registry import Registry
from arbench.plugin.specs import DatasetSpec, MetricSpec, ModelSpec, SamplerSpec, TaskSpec
from arbench.results.identity import canonical
from arbench.results.record import Cost, Record, plain, problem
from arbench.results.statistics import Measured
from arbench.results.store import Store
from arbench.run.cell import Cell
from arbench.run.checks import CheckedSampler
from arbench.run.cost import CostMeter
from arbench.run.provenance import git_state, spec_hash


def resolve_device(name: str | None) -> str:
    """``None`` means cuda when available, else cpu; ``cuda`` without a GPU is an error."""
    import torch

    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA device is available here; use --device cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"--device {name}: expected cpu, cuda or cuda:N")
    return name


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global streams: a cell's seed makes its run
    reproducible."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Runner:
    """Runs cells against one registry, device and store, caching datasets and models."""

    def __init__(self, registry: Registry, store: Store, device: str, run_name: str,
                 timing_repeats: int = 3):
        self.registry = registry
        self.store = store
        self.device = device
        self.run_name = run_name
        self.timing_repeats = timing_repeats
        self._datasets: dict[str, Dataset] = {}
        self._models: dict[str, Model] = {}
        self._warmed: set[Any] = set()  # sampler configurations warmed up in this process

    def run(self, cells: list[Cell],
            on_cell: Callable[[Cell, Record], None] | None = None) -> None:
        """Run `cells` one by one in this process, storing each record and calling `on_cell`
        with it."""
        for cell in cells:
            record = self.run_one(cell)
            if on_cell is not None:
                on_cell(cell, record)

    def run_one(self, cell: Cell) -> Record:
        """Execute `cell`, store its record atomically and return it."""
        return self._stored(self.execute(cell))

    def store_failed(self, cell: Cell, reason: str) -> Record:
        """Store and return the failed record of a cell that could not run to its end (a
        worker that died: the executor's process writes it)."""
        return self._stored(Record(**self._base_record(cell), status="failed", reason=reason))

    def _stored(self, record: Record) -> Record:
        record.provenance.finished_at = now()
        self.store.write(record)
        return record

    def execute(self, cell: Cell) -> Record:
        """Run one cell and return its record; never raises for a plugin's error."""
        base = self._base_record(cell)
        if cell.skip_reason:
            return Record(**base, status="skipped", reason=cell.skip_reason)
        started = time.perf_counter()
        try:
            outcome, sampler = self._run_task(cell)
        except Incompatible as reason:
            return Record(**base, status="skipped", reason=str(reason))
        except Exception as error:
            return Record(**base, status="failed", reason=f"{type(error).__name__}: {error}",
                          traceback=traceback.format_exc(limit=-3),
                          cost=Cost(wall_time_s=time.perf_counter() - started))
        wall = time.perf_counter() - started
        measured = {name: value if isinstance(value, Measured) else Measured(float(value))
                    for name, value in outcome.metrics.items()}
        bad = [name for name, value in measured.items() if not _finite(value)]
        if bad:
            return Record(**base, status="failed", cost=Cost(wall_time_s=wall),
                          reason=f"metric(s) {bad} have NaN or infinite values; the sampler "
                                 "diverged or a metric broke")
        metrics = {}
        for name, value in measured.items():
            spec = self.registry.get(MetricSpec, name.split("/")[0])  # "si_sdr_db/piano"
            metrics[name] = {**value.to_record(), "direction": spec.direction, "unit": spec.unit}
            base["provenance"]["code"][f"metric:{spec.name}"] = spec_hash(spec)
        base["configuration"]["exactness"] = sampler.claim
        done = {**base, "status": "ok", "metrics": metrics, "extra": plain(outcome.extra),
                "diagnostics": plain(sampler.diagnostics),
                "cost": {**sampler.meter.record(), "wall_time_s": wall,
                         "peak_memory_mb": self._peak_mb()}}
        try:
            return Record.model_validate(done)
        except ValidationError as error:  # a value no reader would accept: fail it, saying why
            return Record(**base, status="failed", cost=Cost(wall_time_s=wall),
                          reason=f"the cell's record would be unreadable ({problem(error)})")

    def _run_task(self, cell: Cell) -> tuple[TaskOutput, CheckedSampler]:
        """The task's output and the checked sampler (its cost meter and diagnostics)."""
        import torch

        params = cell.params
        dataset = self._dataset(cell.dataset, params.get(cell.dataset, {}))
        model = None
        if cell.model is not None:
            model = self._model(cell.model, dataset, cell.dataset, params.get(cell.model, {}))
            dataset = model.data_view(dataset)
        spec = self.registry.get(TaskSpec, cell.task)
        sampler = CheckedSampler(
            self.registry.get(SamplerSpec, cell.sampler).load()(**params.get(cell.sampler, {})),
            cell.sampler, CostMeter(cell.sampler, self.device, self._warmed, self.timing_repeats),
            warm=(cell.sampler, canonical(params.get(cell.sampler, {})), id(model),
                  id(dataset)), reference=self._reference(spec, cell, model))
        task = spec.load()(**params.get(cell.task, {}))
        seed_everything(cell.seed)
        generator = torch.Generator(device=self.device).manual_seed(cell.seed)
        if self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats(self.device)
        context = CellContext(
            dataset=dataset, model=model, sampler=sampler, budget=cell.budget, seed=cell.seed,
            device=torch.device(self.device), generator=generator,
            artifacts_dir=self.store.run_dir / "artifacts" / cell.key,
            metric_factory=lambda name, **params: self.registry.get(MetricSpec, name).load()(
                **params),
        )
        return task.run(context), sampler

    def _reference(self, task: TaskSpec, cell: Cell, model: Model | None
                   ) -> tuple[Sampler, Model | None] | None:
        """The task's reference sampler (its defaults), on the cell's model where it needs
        one, to time in turn with the cell's sampler; None for the reference itself or
        when nothing is timed."""
        name = task.reference
        if not self.timing_repeats or name is None or (
                name == cell.sampler and not cell.params.get(cell.sampler)):
            return None
        spec = self.registry.get(SamplerSpec, name)
        return spec.load()(), model if spec.needs_model else None

    def _dataset(self, name: str, params: Mapping[str, Any]) -> Dataset:
        key = canonical([name, params])
        if key not in self._datasets:
            dataset = self.registry.get(DatasetSpec, name).load()(**params)
            dataset.name = name
            self._datasets[key] = dataset
        return self._datasets[key]

    def _model(self, name: str, dataset: Dataset, dataset_name: str,
               params: Mapping[str, Any]) -> Model:
        key = canonical([name, dataset_name, params])
        if key not in self._models:
            import torch

            self._models[key] = self.registry.get(ModelSpec, name).load_model(
                dataset, torch.device(self.device), dict(params))
        return self._models[key]

    def _peak_mb(self) -> float:
        """Peak CUDA memory of this cell, or the process's peak resident set on the CPU."""
        if self.device.startswith("cuda"):
            import torch

            return torch.cuda.max_memory_allocated(self.device) / 2**20
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak_kb / 1024 if sys.platform != "darwin" else peak_kb / 2**20

    def _base_record(self, cell: Cell) -> dict[str, Any]:
        """The parts of `cell`'s record known before it runs: its identity, configuration
        and provenance (plain data, so that a finished cell adds to them)."""
        import torch

        commit, dirty = git_state()
        return {
            "key": cell.key,
            "identity": {
                "task": cell.task, "dataset": cell.dataset, "model": cell.model,
                "sampler": cell.sampler, "budget": cell.budget, "seed": cell.seed,
                "swept": cell.swept,
                "modality": self.registry.get(DatasetSpec, cell.dataset).data_modality()},
            "configuration": {
                "params": cell.params, "checkpoint_sha256": cell.inputs.checkpoint_sha256,
                "data_fingerprint": cell.inputs.data_fingerprint},
            "provenance": {
                "run": self.run_name, "code": dict(cell.inputs.code),
                "plugin_versions": dict(cell.inputs.versions), "device": self.device,
                "torch_version": torch.__version__, "arbench_version": __version__,
                "git_commit": commit, "git_dirty": dirty,
                "worker": f"{socket.gethostname()}:{os.getpid()}"},
        }


def _finite(measured: Measured) -> bool:
    """The value, and every per-example value or replicate kept with it, is finite."""
    import numpy as np

    arrays = [a for a in (measured.per_example, measured.replicates) if a is not None]
    return math.isfinite(measured.value) and all(bool(np.isfinite(a).all()) for a in arrays)


def now() -> str:
    """The time a record is finished: UTC, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


