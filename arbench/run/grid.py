"""Grids: what the user asked for, task x dataset x model x sampler x budget x seed, from
flags or YAML. A `GridSpec` is a value: overrides make a new one, and planning
(`arbench.run.plan`) reads it without changing it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from arbench.errors import GridError, ParameterError, did_you_mean
from arbench.run.flags import (
    check_run_name,
    parse_assignments,
    parse_budget,
    parse_seed,
)

DATA_PATHS = ("data_dir", "data_file")
"""The dataset parameters naming data on disk: the run's name and the records' data
fingerprints follow them."""


@dataclass(frozen=True)
class GridSpec:
    """What the user asked for. No samplers means every sampler serving the task, each
    with the models it can run (only the pairs that can run: nothing is skipped).
    `params` and `sweeps` are raw values by plugin name, typed by each plugin's `Params`
    when the grid is planned."""

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
        resume; runs on different data (``--data-dir``, ``--data-file``) get different
        folders."""
        if self.name:
            return check_run_name(self.name)
        parts = ["+".join(self.tasks), "+".join(self.samplers or self.models or ["all"])]
        if self.datasets:
            parts.append("+".join(self.datasets))
        folders = sorted(str(values[key]) for values in self.params.values()
                         for key in DATA_PATHS if values.get(key) is not None)
        if folders:
            parts.append("data-" + hashlib.sha256("\n".join(folders).encode()).hexdigest()[:8])
        return check_run_name("-".join(parts))

    def with_overrides(self, set_: Sequence[str] = (), sweep: Sequence[str] = (),
                       data_dir: Path | None = None, baselines: bool = True,
                       budgets: list[int | None] | None = None,
                       seeds: list[int] | None = None,
                       data_file: Path | None = None) -> GridSpec:
        """This grid with the command line's ``--set``, ``--sweep``, ``--data-dir`` and
        ``--data-file`` (for each of its datasets), ``--no-baselines``, ``--budget`` and
        ``--seed`` layered on it: a new grid, this one unchanged."""
        params = {plugin: dict(values) for plugin, values in self.params.items()}
        sweeps = {plugin: dict(values) for plugin, values in self.sweeps.items()}
        for plugin, values in parse_set_options(list(set_)).items():
            params.setdefault(plugin, {}).update(values)
        for plugin, values in parse_set_options(list(sweep), sweep=True).items():
            sweeps.setdefault(plugin, {}).update(values)
        for key, path in zip(DATA_PATHS, (data_dir, data_file), strict=True):
            if path is None:
                continue
            if not self.datasets:
                raise GridError(f"--{key.replace('_', '-')} needs --dataset naming the dataset "
                                "that reads it (`arbench list dataset` says which read data "
                                "from disk)")
            for each in self.datasets:
                params.setdefault(each, {})[key] = str(path.resolve())
        return replace(self, params=params, sweeps=sweeps, baselines=self.baselines and baselines,
                       budgets=budgets or self.budgets, seeds=seeds or self.seeds)


_LIST_KEYS = {"tasks", "samplers", "datasets", "models", "budgets", "seeds"}
_ALL_KEYS = _LIST_KEYS | {"name", "params", "sweeps", "baselines"}


def load_grid_file(path: Path) -> GridSpec:
    """Read and validate a YAML grid; every error names the file and the bad key."""
    return grid_from_mapping(parse_yaml(read_text(path), path), str(path))


def read_text(path: Path) -> str:
    """A grid or suite file's text, or a GridError saying why it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GridError(f"grid file {path} does not exist") from None
    except IsADirectoryError:
        raise GridError(f"grid file {path} is a folder; give a YAML file") from None
    except UnicodeDecodeError:
        raise GridError(f"grid file {path} is not UTF-8 text") from None
    except OSError as error:
        raise GridError(f"grid file {path} cannot be read ({error.strerror})") from None


class _UniqueKeys(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the
    last silently, so a grid would lose the first value without a word)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults` may be overridden
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):  # the safe loader itself refuses it
                continue
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice in one mapping; keep one",
                    key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def parse_yaml(text: str, path: Path) -> Any:
    """`text` (of the file at `path`) as YAML, or a GridError naming the file."""
    try:
        return yaml.load(text, Loader=_UniqueKeys)  # noqa: S506 - a SafeLoader subclass
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
