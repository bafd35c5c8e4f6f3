"""Plugin specs: what a plugin tells arbench about itself, and the one place each fact is.

A spec holds what the registry needs to index a plugin without running it (name,
description, which datasets a model has checkpoints for, which tasks a sampler
serves) plus a `factory`: the plugin class itself or a lazy ``"module:Class"``
string, so registration modules never import torch. What the code itself
implements is declared on the class and read from there (a model's ``provides``, a
dataset's ``modality``, a sampler's ``exactness``): checking it against the methods is
then one step. A model's family is its registered name; the core resolves its
checkpoints (`ModelSpec.checkpoint_path`) and hands the name to the class's methods.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from arbench.errors import CheckpointError, ContractError, PluginError
from arbench.plugin.kinds import Kind
from arbench.results.direction import Direction

if TYPE_CHECKING:
    from pathlib import Path

    import torch

    from arbench.plugin.contracts import (  # noqa: F401 (named in the specs' Generic bases)
        Dataset,
        Metric,
        Model,
        Sampler,
        Task,
    )

PluginT = TypeVar("PluginT")


@dataclass(frozen=True)
class PluginSpec(Generic[PluginT]):
    """Fields shared by every kind of plugin; `load` gives the plugin class."""

    kind: ClassVar[Kind]

    name: str
    factory: Any
    description: str
    package: str = field(default="", compare=False)
    version: str = field(default="", compare=False)

    def load(self) -> type[PluginT]:
        """Import and return the plugin class (resolving a ``"module:Class"`` string)."""
        if not isinstance(self.factory, str):
            return self.factory  # type: ignore[no-any-return]
        module_name, _, attr = self.factory.partition(":")
        if not attr:
            raise ValueError(
                f"{self.kind} '{self.name}': factory {self.factory!r} must look like 'module:Class'"
            )
        return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]

    def capabilities(self) -> str:
        """One line describing what this plugin provides or needs, for `arbench list`."""
        return ""


@dataclass(frozen=True)
class DatasetSpec(PluginSpec["Dataset"]):
    """A dataset. Its modality (image, audio, text, points) is its class's ``modality``
    (`data_modality`)."""

    kind: ClassVar[Kind] = Kind.DATASET

    def data_modality(self) -> str:
        """The class's modality (imports the dataset's module once)."""
        return str(_class_fact(self, "modality"))

    def capabilities(self) -> str:
        return f"modality={self.data_modality()}"


@dataclass(frozen=True)
class ModelSpec(PluginSpec["Model"]):
    """A model family, named by its registered name. Its class's ``provides`` lists the
    capabilities samplers may require (names of `arbench.plugin.capabilities.PROTOCOLS`,
    or a third party's own), read by `provided`; `datasets` lists the datasets it has
    (or can train) checkpoints for; `sweep` gives parameter values swept by default (a
    MADE's ``{"mixtures": (3, 6)}``); a `reference` model (a dataset's true density)
    joins every grid it fits even when the grid names its models, like a task's
    baselines; a model that does not `ships_weights` (the authors' released ones,
    imported by the user), or not `joins_defaults` (a larger size of a family, for the
    suites that ask for it), joins only grids that name it."""

    kind: ClassVar[Kind] = Kind.MODEL
    datasets: frozenset[str] = frozenset()
    sweep: dict[str, tuple[Any, ...]] = field(default_factory=dict, hash=False)
    reference: bool = False
    ships_weights: bool = True
    joins_defaults: bool = True

    def load(self) -> type[Model]:
        """The model class, checked against this spec (`arbench.plugin.capabilities`)."""
        from arbench.plugin.capabilities import verify_model_class

        cls = super().load()
        verify_model_class(cls, self.name)
        return cls

    def checkpoint_path(self, dataset_name: str, params: dict[str, Any]) -> Path | None:
        """The one checkpoint resolver: ``checkpoint=PATH`` if given, else the shipped one
        (`arbench.plugin.contracts.Model.shipped_checkpoint`); None for a model that ships
        none, or has nothing to load (a closed form)."""
        from pathlib import Path

        if params.get("checkpoint") is not None:
            return Path(params["checkpoint"])
        if not self.ships_weights or not dataset_name:
            return None
        return self.load().shipped_checkpoint(dataset_name, family=self.name, **params)

    def checkpoint_sha256(self, dataset_name: str, params: dict[str, Any]) -> str:
        """The sha256 of what a cell of this model will load (part of its key)."""
        path = self.checkpoint_path(dataset_name, params)
        return self.load().checkpoint_sha256(path, dataset_name, family=self.name, **params)

    def load_model(self, dataset: Dataset, device: torch.device, params: dict[str, Any],
                   option: str | None = None) -> Model:
        """The model for `dataset` on `device`, from its resolved checkpoint; a missing
        checkpoint is a `CheckpointError` naming the command that makes one and the option
        that takes it (`option`, default ``NAME.checkpoint``)."""
        path = self.checkpoint_path(dataset.name, params)
        if path is None and not self.ships_weights:
            raise CheckpointError(
                f"{self.name} ships no weights: import the released ones (`arbench import "
                f"{self.name} DIR --out BANK`) and pass --set {self.name}.checkpoint=BANK")
        if path is not None and not path.exists():
            raise CheckpointError(self._missing(path, dataset, params, option))
        given = {key: value for key, value in params.items() if key != "checkpoint"}
        return self.load().load(dataset, device, family=self.name, checkpoint=path, **given)

    def _missing(self, path: Path, dataset: Dataset, params: dict[str, Any],
                 option: str | None) -> str:
        folder = getattr(dataset.params, "data_dir", None)
        data = f" --data-dir {folder}" if folder else ""
        given = "".join(f" --set {key}={value}" for key, value in sorted(params.items())
                        if key != "checkpoint")
        return (f"no checkpoint {path} for dataset '{dataset.name}'. Train one with `arbench "
                f"train {self.name} --dataset {dataset.name}{data}{given} --out FILE`, then run "
                f"with `--set {option or self.name + '.checkpoint'}=FILE`")

    def provided(self) -> frozenset[str]:
        """The capabilities the model class provides (imports its module once). A model
        whose module cannot be imported provides nothing here (a warning names it), so it
        joins no grid instead of breaking every grid on its datasets."""
        try:
            return frozenset(_class_fact(self, "provides"))
        except ContractError:
            raise  # the class breaks its own contract: the author must fix it
        except PluginError as error:
            import warnings

            warnings.warn(f"{error} (it joins no grid)", UserWarning, stacklevel=2)
            return frozenset()

    def capabilities(self) -> str:
        text = f"provides={_join(self.provided())}; datasets={_join(self.datasets)}"
        text += "; reference" if self.reference else ""
        return text + ("" if self.ships_weights else "; weights imported by the user")


@dataclass(frozen=True)
class SamplerSpec(PluginSpec["Sampler"]):
    """A sampler. `requires` are model capabilities it needs (empty: it runs
    without a model, like a spline baseline); `serves` are task names; `sweep`
    gives parameter values swept by default, so one command compares its
    variants (e.g. ``{"policy": ("dp", "naive")}``)."""

    kind: ClassVar[Kind] = Kind.SAMPLER
    requires: frozenset[str] = frozenset()
    serves: frozenset[str] = frozenset()
    sweep: dict[str, tuple[Any, ...]] = field(default_factory=dict, hash=False)

    @property
    def needs_model(self) -> bool:
        """Whether a cell of this sampler needs a model (a baseline runs without one)."""
        return bool(self.requires)

    def capabilities(self) -> str:
        return f"requires={_join(self.requires) or 'no model'}; serves={_join(self.serves)}"


@dataclass(frozen=True)
class TableLayout:
    """How a task's paper-style table is laid out: which record fields make the
    rows and the columns, and which metrics (None: all) fill it. Fields are
    task, dataset, variant, model, sampler, budget, nfe and metric. The best
    entry is marked among entries that differ only in the `compete` fields
    (by default: the samplers and models run on the same data and setting).
    `references` name models or samplers shown for scale but never marked best
    (a dataset's true density: a floor, not a competitor)."""

    rows: tuple[str, ...]
    columns: tuple[str, ...] = ("metric",)
    metrics: tuple[str, ...] | None = None
    compete: tuple[str, ...] = ("model", "sampler", "budget", "nfe")
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskSpec(PluginSpec["Task"]):
    """A task. `modalities` are the dataset modalities it accepts;
    `default_datasets` are used when the grid names none; `baselines` are
    reference samplers that join every grid of this task (the paper's reference
    rows, e.g. spline for super-resolution), run at their default budget;
    `sweep` gives, per modality, parameter values swept by default
    (e.g. ``{"audio": {"ratio": (4, 8, 16)}}``); `modality_tables` gives the
    data of one modality its own table (the 2-D density table is laid out like
    its paper, not like ARDM's NLL vs steps); `figures` names reporters whose
    files `arbench run` writes into the run folder after the grid (the 2-D
    density plots)."""

    kind: ClassVar[Kind] = Kind.TASK
    modalities: frozenset[str] = frozenset()
    default_datasets: tuple[str, ...] = ()
    baselines: tuple[str, ...] = ()
    sweep: dict[str, dict[str, tuple[Any, ...]]] = field(default_factory=dict, hash=False)
    table: TableLayout | None = None
    modality_tables: dict[str, TableLayout] = field(default_factory=dict, hash=False)
    figures: tuple[str, ...] = ()
    reference: str | None = None

    def capabilities(self) -> str:
        text = f"modalities={_join(self.modalities)}; datasets={','.join(self.default_datasets)}"
        return text + (f"; baselines={','.join(self.baselines)}" if self.baselines else "")


@dataclass(frozen=True)
class MetricSpec(PluginSpec["Metric"]):
    """A metric: its direction (is lower or higher better) and unit travel with
    every record, so reports and `arbench compare` need no plugin import."""

    kind: ClassVar[Kind] = Kind.METRIC
    direction: Direction = "lower"
    unit: str = ""

    def capabilities(self) -> str:
        return f"{self.direction} is better" + (f"; unit={self.unit}" if self.unit else "")


@dataclass(frozen=True)
# Executors and reporters are typed where they are built (their bases, arbench.run.runner.Executor
# and arbench.report.build.Reporter, sit above the registry this module feeds).
class ExecutorSpec(PluginSpec[Any]):
    """Where a grid's cells run (``arbench run --executor NAME``): in this process or
    local worker processes, a Ray cluster, SLURM jobs. `extra` names the install extra
    its engine comes with (``arbench[ray]``), for the error when it is missing; the one
    `default` executor runs a grid that names none."""

    kind: ClassVar[Kind] = Kind.EXECUTOR
    extra: str = ""
    default: bool = False  # the executor of a run that names none (the built-in local one)

    def capabilities(self) -> str:
        return f"needs arbench[{self.extra}]" if self.extra else "built in"


@dataclass(frozen=True)
class ReporterSpec(PluginSpec[Any]):
    """A report format (``arbench report --format NAME``); `output` names what it
    writes in the report folder, e.g. ``report.tex`` or ``plots/``."""

    kind: ClassVar[Kind] = Kind.REPORTER
    output: str = ""

    def capabilities(self) -> str:
        return f"writes {self.output}"


def _join(names: frozenset[str]) -> str:
    return ",".join(sorted(names))


SPEC_TYPES: dict[Kind, type[PluginSpec[Any]]] = {
    cls.kind: cls
    for cls in (DatasetSpec, ModelSpec, SamplerSpec, TaskSpec, MetricSpec, ReporterSpec,
                ExecutorSpec)
}


@cache
def _class_fact(spec: PluginSpec[Any], name: str) -> Any:
    """A fact the plugin's class declares (a model's ``provides``, a dataset's
    ``modality``), read from the class itself so it is declared once."""
    try:
        cls = spec.load()
    except PluginError:
        raise
    except Exception as error:  # a missing dependency, a syntax error in the plugin
        raise PluginError(f"{spec.kind} '{spec.name}' cannot be loaded from {spec.factory!r}: "
                          f"{type(error).__name__}: {error}") from error
    return getattr(cls, name)
