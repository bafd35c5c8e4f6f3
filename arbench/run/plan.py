"""Planning: grids into the cells they ask for, before anything runs.

`plan` checks every name and types every parameter once (each plugin's `Params`), then
expands task x dataset x sampler x model x budget x seed x swept values into
`CellPlan`s in a stable order: default datasets and compatible models resolved, a
task's baselines added, and the pairs that cannot run kept with the reason they are
skipped (recorded, never a crash). It is pure: it reads the grids and the registry's
specs and classes, and touches no file; what the cells read is fingerprinted later
(`arbench.run.provenance.take`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from arbench.errors import GridError, ParameterError, did_you_mean
from arbench.plugin.kinds import Kind
from arbench.plugin.params import given
from arbench.plugin.registry import Registry
from arbench.plugin.specs import DatasetSpec, ModelSpec, PluginSpec, SamplerSpec, TaskSpec
from arbench.results.identity import identity
from arbench.run.cell import CellPlan
from arbench.run.flags import MAX_CELLS
from arbench.run.grid import GridSpec


def plan(grids: Sequence[GridSpec], registry: Registry, max_cells: int = MAX_CELLS
         ) -> list[CellPlan]:
    """The cells of `grids` in order, each once (baselines recur across grids); a
    GridError before expanding anything when they could hold more than `max_cells`."""
    bound = sum(size_bound(grid, registry) for grid in grids)
    if bound > max_cells:
        raise GridError(f"this grid has up to {bound:,} cells, more than the limit of "
                        f"{max_cells:,}; narrow its lists and sweeps, or pass --max-cells "
                        f"{bound} to run it anyway")
    cells: dict[str, CellPlan] = {}
    for grid in grids:
        for cell in _expand(_Typed.of(grid, registry), registry):
            cells.setdefault(identity(cell.configuration()), cell)
    return list(cells.values())


def size_bound(grid: GridSpec, registry: Registry) -> int:
    """An upper bound on the cells `grid` expands to, from its lists alone (unknown names
    count once here; `plan` names them)."""
    known = set(registry.names(Kind.TASK))
    tasks: list[TaskSpec | None] = [registry.get(TaskSpec, t) for t in grid.tasks if t in known]
    models = max(1, len(grid.models) or len(registry.names(Kind.MODEL)))
    sweeps = math.prod(len(values) for axes in grid.sweeps.values() for values in axes.values())
    total = 0
    for task in tasks or [None]:  # no known task: `plan` will say which name is wrong
        datasets = len(grid.datasets) or (len(task.default_datasets) if task else 1)
        samplers = (len(grid.samplers) or len(registry.names(Kind.SAMPLER))) + (
            len(task.baselines) if task else 0)
        defaults = max([math.prod(len(v) for v in axes.values())
                        for axes in task.sweep.values()] or [1]) if task else 1
        total += (datasets * samplers * models * len(grid.budgets) * len(grid.seeds)
                  * sweeps * defaults)
    return total


@dataclass(frozen=True)
class _Typed:
    """A grid whose names are known and whose parameter values are typed."""

    grid: GridSpec
    params: Mapping[str, Mapping[str, Any]]
    sweeps: Mapping[str, Mapping[str, list[Any]]]

    @classmethod
    def of(cls, grid: GridSpec, registry: Registry) -> _Typed:
        """Every name checked (with suggestions) and every value converted to its declared
        type and range, in new mappings: the grid is left as it was."""
        for spec_type, names in ((TaskSpec, grid.tasks), (SamplerSpec, grid.samplers),
                                 (DatasetSpec, grid.datasets), (ModelSpec, grid.models)):
            for name in names:
                registry.get(spec_type, name)  # raises with suggestions
        specs = {spec.name: spec for kind in Kind if kind.configures_cells
                 for spec in registry.of_kind(kind)}
        for name in [*grid.params, *grid.sweeps]:
            if name not in specs:
                raise GridError(f"parameters given for unknown plugin '{name}'."
                                f"{did_you_mean(name, specs)}")
        try:
            params = {name: given(specs[name].load().configure(name, values))
                      for name, values in grid.params.items()}
            sweeps = {name: {key: [given(specs[name].load().configure(name, {key: value}))[key]
                                   for value in values] for key, values in axes.items()}
                      for name, axes in grid.sweeps.items()}
        except ParameterError as error:
            raise GridError(str(error)) from None
        return cls(grid, params, sweeps)


def _expand(typed: _Typed, registry: Registry) -> list[CellPlan]:
    grid = typed.grid
    cells: list[CellPlan] = []
    for task_name in grid.tasks:
        task = registry.get(TaskSpec, task_name)
        samplers = grid.samplers or [s.name for s in registry.all(SamplerSpec)
                                     if task.name in s.serves and s.name not in task.baselines]
        baselines = [b for b in task.baselines if b not in samplers] if grid.baselines else []
        for dataset_name in grid.datasets or list(task.default_datasets):
            dataset = registry.get(DatasetSpec, dataset_name)
            for sampler_name in [*baselines, *samplers]:
                sampler = registry.get(SamplerSpec, sampler_name)
                budgets: list[int | None] = [None] if sampler_name in baselines else grid.budgets
                for model in _model_choices(grid, registry, dataset, sampler):
                    found = _cells_for(typed, task, dataset, sampler, model, budgets)
                    # Samplers the user did not name join only where they can run.
                    cells += [c for c in found if grid.samplers or c.skip_reason is None]
    return cells


def _skip_reason(task: TaskSpec, dataset: DatasetSpec, sampler: SamplerSpec,
                 model: ModelSpec | None) -> str | None:
    if task.name not in sampler.serves:
        return f"sampler '{sampler.name}' does not serve task '{task.name}'"
    modality = dataset.data_modality()
    if task.modalities and modality not in task.modalities:
        return f"task '{task.name}' takes {sorted(task.modalities)} data, not {modality}"
    if model is None:
        return (f"no model provides {sorted(sampler.requires)} for dataset '{dataset.name}'"
                if sampler.needs_model else None)
    missing = sampler.requires - model.provided()
    if missing:
        return f"model '{model.name}' lacks {sorted(missing)} needed by sampler '{sampler.name}'"
    if dataset.name not in model.datasets:
        return f"model '{model.name}' has no checkpoint for dataset '{dataset.name}'"
    return None


def _model_choices(grid: GridSpec, registry: Registry, dataset: DatasetSpec,
                   sampler: SamplerSpec) -> list[ModelSpec | None]:
    """Models a cell may use: the grid's (plus the reference models that fit, unless
    baselines are off), else every compatible one that ships weights, else None
    (model-free)."""
    if not sampler.needs_model:
        return [None]
    fitting = [m for m in registry.all(ModelSpec)
               if dataset.name in m.datasets and sampler.requires <= m.provided()]
    if grid.models:
        references = [m for m in fitting if m.reference and m.name not in grid.models]
        chosen = [registry.get(ModelSpec, m) for m in grid.models]
        return [*chosen, *(references if grid.baselines else [])]
    shipped: list[ModelSpec | None] = [m for m in fitting
                                       if m.ships_weights and m.joins_defaults]
    return shipped or [None]


def _sweep_variants(typed: _Typed, task: TaskSpec, dataset: DatasetSpec, sampler: SamplerSpec,
                    model: ModelSpec | None, used: list[str]) -> list[dict[str, dict[str, Any]]]:
    """Every combination of swept values for the plugins in `used`, as parameter overlays.

    The task's default sweep for the dataset's modality, the sampler's and model's default
    sweeps and the dataset's own (`Dataset.variants`) apply unless the grid sweeps or
    sets that key itself.
    """
    axes: dict[tuple[str, str], list[Any]] = {}
    defaults: list[tuple[str, Mapping[str, Sequence[Any]]]] = [
                (task.name, task.sweep.get(dataset.data_modality(), {})),
                (dataset.name, _dataset_variants(typed, dataset)),
                (sampler.name, sampler.sweep), *([(model.name, model.sweep)] if model else [])]
    for plugin, sweep in defaults:
        for key, values in sweep.items():
            if key not in typed.params.get(plugin, {}):
                axes[(plugin, key)] = list(values)
    for plugin in used:
        for key, swept in typed.sweeps.get(plugin, {}).items():
            axes[(plugin, key)] = list(swept)
    overlays = []
    for combo in itertools.product(*axes.values()):
        overlay: dict[str, dict[str, Any]] = {}
        for (plugin, key), value in zip(axes, combo, strict=True):
            overlay.setdefault(plugin, {})[key] = value
        overlays.append(overlay)
    return overlays


def _dataset_variants(typed: _Typed, dataset: DatasetSpec) -> dict[str, list[Any]]:
    """The values the dataset sweeps by default for the grid's configuration of it, or a
    GridError saying why its data cannot tell (a missing or malformed file)."""
    try:
        return dataset.load().variants(typed.params.get(dataset.name, {}))
    except (OSError, ValueError) as error:
        raise GridError(f"dataset '{dataset.name}': {error}") from None


def _cells_for(typed: _Typed, task: TaskSpec, dataset: DatasetSpec, sampler: SamplerSpec,
               model: ModelSpec | None, budgets: list[int | None]) -> list[CellPlan]:
    reason = _skip_reason(task, dataset, sampler, model)
    used: list[PluginSpec[Any]] = [task, dataset, sampler, *([model] if model else [])]
    base = {spec.name: dict(typed.params.get(spec.name, {})) for spec in used}
    cells = []
    for overlay in _sweep_variants(typed, task, dataset, sampler, model, [s.name for s in used]):
        params = {name: {**values, **overlay.get(name, {})} for name, values in base.items()}
        helpers = sampler.load()(**params[sampler.name]).models_used() if reason is None else {}
        cells += [CellPlan(task=task.name, dataset=dataset.name,
                           model=model.name if model else None, sampler=sampler.name,
                           budget=budget, seed=seed, params=params, swept=overlay,
                           helpers=helpers, skip_reason=reason)
                  for budget in budgets for seed in typed.grid.seeds]
    return cells
