"""Grids: task x dataset x model x sampler x budget x seed, from flags or YAML.

`GridSpec` is what the user asked for; `expand` turns it into concrete `Cell`s,
resolving default datasets and compatible models, and marking the pairs that
cannot run as skipped with a reason (they are recorded, never crash the grid).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from arbench.errors import GridError, ParameterError, did_you_mean
from arbench.plugin.registry import Registry
from arbench.plugin.specs import DatasetSpec, ModelSpec, PluginSpec, SamplerSpec, TaskSpec
from arbench.results.identity import variant_label
from arbench.run.flags import (
    check_run_name,
    parse_assignments,
    parse_budget,
    parse_seed,
)
from arbench.run.provenance import code_of, data_fingerprint


@dataclass
class GridSpec:
    """What the user asked for. No samplers means every sampler serving the task, each
    with the models it can run (only the pairs that can run: nothing is skipped)."""

    tasks: list[str]
    samplers: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    budgets: list[int | None] = field(default_factory=lambda: [None])
    seeds: list[int] = field(default_factory=lambda: [0])
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    sweeps: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    baselines: bool = True
    name: str | None = None

    def run_name(self) -> str:
        """Default results folder name: the same flags give the same folder, so reruns
        resume; runs on different data folders (``--data-dir``) get different folders."""
        if self.name:
            return check_run_name(self.name)
        parts = ["+".join(self.tasks), "+".join(self.samplers or self.models or ["all"])]
        if self.datasets:
            parts.append("+".join(self.datasets))
        folders = sorted(str(values["data_dir"]) for values in self.params.values()
                         if values.get("data_dir") is not None)
        if folders:
            parts.append("data-" + hashlib.sha256("\n".join(folders).encode()).hexdigest()[:8])
        return check_run_name("-".join(parts))


@dataclass(frozen=True)
class Cell:
    """One unit of work. `key` hashes its configuration (names, budget, seed, parameters,
    checkpoint): what `arbench compare` matches records by. `code` holds the source
    hashes of the plugins it uses (`arbench.run.provenance`): a record made by other code
    is not a finished cell, so an edited plugin reruns its cells."""

    task: str
    dataset: str
    model: str | None
    sampler: str
    budget: int | None
    seed: int
    params: dict[str, dict[str, Any]] = field(hash=False, compare=False)
    versions: dict[str, str] = field(hash=False, compare=False)
    code: dict[str, str] = field(hash=False, compare=False)
    checkpoint_sha256: str = ""
    # names, sizes and modification times of the files under a `data_dir` parameter
    # (`arbench.run.provenance.data_fingerprint`): changed data is a new cell
    data_fingerprint: str = ""
    variant: str = ""  # `variant_label` of `swept`, e.g. "ratio=8"
    skip_reason: str | None = None
    # the swept parameters by plugin, e.g. {"superres": {"ratio": 8}}: what reports read
    swept: dict[str, dict[str, Any]] = field(default_factory=dict, hash=False, compare=False)

    @cached_property
    def key(self) -> str:  # computed once: grids of thousands of cells ask often
        payload = {k: v for k, v in asdict(self).items()
                   if k not in ("skip_reason", "variant", "swept", "versions", "code")}
        if not self.data_fingerprint:  # keys of cells without data folders stay as they were
            del payload["data_fingerprint"]
        blob = json.dumps(payload, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def label(self) -> str:
        budget = "default" if self.budget is None else self.budget
        model = self.model or "-"
        variant = f" {self.variant}" if self.variant else ""
        return (f"{self.task}/{self.dataset}/{model}/{self.sampler}{variant} "
                f"budget={budget} seed={self.seed}")


_LIST_KEYS = {"tasks", "samplers", "datasets", "models", "budgets", "seeds"}
_ALL_KEYS = _LIST_KEYS | {"name", "params", "sweeps", "baselines"}


def load_grid_file(path: Path) -> GridSpec:
    """Read and validate a YAML grid; every error names the file and the bad key."""
    return grid_from_mapping(read_yaml(path), str(path))


def read_yaml(path: Path) -> Any:
    """The parsed YAML file, or a GridError saying what is wrong with it."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GridError(f"grid file {path} does not exist") from None
    except IsADirectoryError:
        raise GridError(f"grid file {path} is a folder; give a YAML file") from None
    except UnicodeDecodeError:
        raise GridError(f"grid file {path} is not UTF-8 text") from None
    except OSError as error:
        raise GridError(f"grid file {path} cannot be read ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise GridError(f"{path}: not valid YAML: {error}") from None


def grid_from_mapping(raw: Any, where: str) -> GridSpec:
    """Validate one grid given as a mapping; `where` prefixes every error message."""
    if not isinstance(raw, dict):
        raise GridError(f"{where}: expected a mapping with keys {sorted(_ALL_KEYS)}")
    for key in raw:
        if key not in _ALL_KEYS:
            raise GridError(f"{where}: unknown key '{key}'.{did_you_mean(key, _ALL_KEYS)} "
                            f"Allowed: {sorted(_ALL_KEYS)}")
    if not raw.get("tasks"):
        raise GridError(f"{where}: 'tasks' is required and must list at least one name")
    lists: dict[str, list[Any]] = {}
    for key in _LIST_KEYS & raw.keys():
        value = raw[key]
        value = value if isinstance(value, list) else [value]
        lists[key] = value
    try:
        budgets = [parse_budget(str(b)) for b in lists.get("budgets", ["default"])]
        seeds = [parse_seed(str(s)) for s in lists.get("seeds", [0])]
    except GridError as error:
        raise GridError(f"{where}: {error}") from None
    params = raw.get("params") or {}
    if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
        raise GridError(f"{where}: 'params' must map plugin names to mappings of parameters")
    sweeps = raw.get("sweeps") or {}
    if not isinstance(sweeps, dict) or not all(
        isinstance(v, dict) and all(isinstance(vals, list) and vals for vals in v.values())
        for v in sweeps.values()
    ):
        raise GridError(f"{where}: 'sweeps' must map plugin names to {{key: [value, ...]}}")
    baselines = raw.get("baselines", True)
    if not isinstance(baselines, bool):
        raise GridError(f"{where}: 'baselines' must be true or false, not {baselines!r}")
    name = raw.get("name")
    if name is not None:
        try:
            check_run_name(name)
        except GridError as error:
            raise GridError(f"{where}: {error}") from None
    return GridSpec(
        tasks=[str(t) for t in lists["tasks"]],
        samplers=[str(s) for s in lists.get("samplers", [])],
        datasets=[str(d) for d in lists.get("datasets", [])],
        models=[str(m) for m in lists.get("models", [])],
        budgets=budgets,
        seeds=seeds,
        params=params,
        sweeps=sweeps,
        baselines=baselines,
        name=name,
    )


def parse_set_options(options: list[str], sweep: bool = False) -> dict[str, dict[str, Any]]:
    """``NAME.KEY=VALUE`` flags into ``{NAME: {KEY: VALUE}}`` (typed later by each
    plugin's declared parameters). With ``sweep`` (``--sweep``) a value is a
    comma-separated list."""
    flag = "--sweep" if sweep else "--set"
    try:
        return parse_assignments(options, flag, dotted=True, as_list=sweep)
    except ParameterError as error:
        raise GridError(str(error)) from None


def _validate_names(grid: GridSpec, registry: Registry) -> None:
    """Every name known, and every parameter value converted to its declared type and
    checked against its range (in place), before any cell runs."""
    for kind, names in (("task", grid.tasks), ("sampler", grid.samplers),
                        ("dataset", grid.datasets), ("model", grid.models)):
        for name in names:
            registry.get(kind, name)  # raises with suggestions
    kinds = {name: kind for kind in ("task", "sampler", "dataset", "model")
             for name in registry.names(kind)}
    for name in [*grid.params, *grid.sweeps]:
        if name not in kinds:
            raise GridError(f"parameters given for unknown plugin '{name}'."
                            f"{did_you_mean(name, kinds)}")
    try:
        for name, values in grid.params.items():
            plugin = registry.get(kinds[name], name).load()
            grid.params[name] = plugin.check_params(name, values)
        for name, axes in grid.sweeps.items():
            plugin = registry.get(kinds[name], name).load()
            grid.sweeps[name] = {key: [plugin.check_params(name, {key: v})[key] for v in vals]
                                 for key, vals in axes.items()}
    except ParameterError as error:
        raise GridError(str(error)) from None


def _skip_reason(task: TaskSpec, dataset: DatasetSpec, sampler: SamplerSpec,
                 model: ModelSpec | None) -> str | None:
    if task.name not in sampler.serves:
        return f"sampler '{sampler.name}' does not serve task '{task.name}'"
    modality = dataset.data_modality()
    if task.modalities and modality not in task.modalities:
        return f"task '{task.name}' takes {sorted(task.modalities)} data, not {modality}"
    if model is None:
        return None
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
    fitting = [m for m in registry.all("model")
               if dataset.name in m.datasets and sampler.requires <= m.provided()]
    if grid.models:
        references = [m for m in fitting if m.reference and m.name not in grid.models]
        chosen = [registry.get("model", m) for m in grid.models]
        return [*chosen, *(references if grid.baselines else [])]
    shipped: list[ModelSpec | None] = [m for m in fitting if m.ships_weights]
    return shipped or [None]


def _sweep_variants(grid: GridSpec, task: TaskSpec, dataset: DatasetSpec, sampler: SamplerSpec,
                    model: ModelSpec | None, used: list[str]) -> list[dict[str, dict[str, Any]]]:
    """Every combination of swept values for the plugins in `used`, as parameter overlays.

    The task's default sweep for the dataset's modality and the sampler's and model's
    default sweeps apply unless the grid sweeps or sets that key itself.
    """
    axes: dict[tuple[str, str], list[Any]] = {}
    defaults = [(task.name, task.sweep.get(dataset.data_modality(), {})),
                (sampler.name, sampler.sweep), *([(model.name, model.sweep)] if model else [])]
    for plugin, sweep in defaults:
        for key, values in sweep.items():
            if key not in grid.params.get(plugin, {}):
                axes[(plugin, key)] = list(values)
    for plugin in used:
        for key, swept in grid.sweeps.get(plugin, {}).items():
            axes[(plugin, key)] = list(swept)
    overlays = []
    for combo in itertools.product(*axes.values()):
        overlay: dict[str, dict[str, Any]] = {}
        for (plugin, key), value in zip(axes, combo, strict=True):
            overlay.setdefault(plugin, {})[key] = value
        overlays.append(overlay)
    return overlays


def expand(grid: GridSpec, registry: Registry) -> list[Cell]:
    """All cells of the grid in a stable order, incompatible ones carrying a skip reason."""
    _validate_names(grid, registry)
    cells: list[Cell] = []
    for task_name in grid.tasks:
        task = registry.get("task", task_name)
        samplers = grid.samplers or [s.name for s in registry.all("sampler")
                                     if task.name in s.serves and s.name not in task.baselines]
        baselines = [b for b in task.baselines if b not in samplers] if grid.baselines else []
        for dataset_name in grid.datasets or list(task.default_datasets):
            dataset = registry.get("dataset", dataset_name)
            for sampler_name in [*baselines, *samplers]:
                sampler = registry.get("sampler", sampler_name)
                budgets: list[int | None] = [None] if sampler_name in baselines else grid.budgets
                for model in _model_choices(grid, registry, dataset, sampler):
                    found = _cells_for(grid, registry, task, dataset, sampler, model, budgets)
                    # Samplers the user did not name join only where they can run.
                    cells += [c for c in found if grid.samplers or c.skip_reason is None]
    return cells


def _cells_for(grid: GridSpec, registry: Registry, task: TaskSpec, dataset: DatasetSpec,
               sampler: SamplerSpec, model: ModelSpec | None, budgets: list[int | None]
               ) -> list[Cell]:
    reason = _skip_reason(task, dataset, sampler, model)
    if reason is None and model is None and sampler.needs_model:
        reason = f"no model provides {sorted(sampler.requires)} for dataset '{dataset.name}'"
    used: list[PluginSpec[Any]] = [task, dataset, sampler, *([model] if model else [])]
    base = {spec.name: dict(grid.params.get(spec.name, {})) for spec in used}
    versions = {f"{s.kind}:{s.name}": f"{s.package}=={s.version}" for s in used}
    cells = []
    for overlay in _sweep_variants(grid, task, dataset, sampler, model, [s.name for s in used]):
        params = {name: {**values, **overlay.get(name, {})} for name, values in base.items()}
        sha = ""  # per variant: a model parameter may pick the checkpoint (mixtures=6)
        if model is not None and reason is None:
            sha = model.load().checkpoint_sha256(dataset.name, **params[model.name])
        helpers = sampler.load().models_used(params[sampler.name]) if reason is None else {}
        for name, helper_params in helpers.items():  # a speculative sampler's draft model
            sha += f"+{name}:" + registry.get("model", name).load().checkpoint_sha256(
                dataset.name, **helper_params)
        code = code_of([*used, *(registry.get("model", name) for name in helpers)])
        folder = params[dataset.name].get("data_dir")
        fingerprint = data_fingerprint(Path(folder)) if folder is not None else ""
        for budget in budgets:
            for seed in grid.seeds:
                cells.append(Cell(
                    task=task.name, dataset=dataset.name, model=model.name if model else None,
                    sampler=sampler.name, budget=budget, seed=seed, params=params,
                    versions=versions, code=code, checkpoint_sha256=sha,
                    data_fingerprint=fingerprint,
                    variant=variant_label(overlay, task.name), swept=overlay,
                    skip_reason=reason,
                ))
    return cells
