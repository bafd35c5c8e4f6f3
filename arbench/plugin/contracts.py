"""Runtime contracts: the small base classes plugins subclass.

A plugin class is constructed with the keyword parameters the grid gives it
(``--set NAME.KEY=VALUE`` or a YAML grid), validated by its nested `Params` model and
kept as ``self.params`` (read as attributes: ``self.params.delta``). Any step may raise
`Incompatible` to have its cell recorded as skipped with that reason instead of failed.

This module imports torch only for type checking, so plugin registration
modules can import it for free.
"""

from __future__ import annotations

import math
import typing
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from arbench.errors import ContractError
from arbench.plugin import params as parameters
from arbench.plugin.conditions import Condition
from arbench.plugin.params import Param

if TYPE_CHECKING:
    import torch

    from arbench.results.statistics import Measured


class Configurable(ABC):  # noqa: B024 (ABC so subclasses' abstract methods are enforced)
    """A plugin's parameters, validated by its nested ``Params`` model (see
    `arbench.plugin.params`) and kept as ``self.params``. Unknown keys and values outside
    the declared range are a `ParameterError` naming the plugin and the key."""

    class Params(parameters.Params):
        """No parameters: a plugin that takes some extends its base's ``Params``."""

    params: Params

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for old in ("parameters", "defaults"):
            if old in cls.__dict__:
                raise ContractError(
                    f"{cls.__name__}.{old}: a plugin declares its parameters as a nested "
                    f"`class Params({cls.__mro__[1].__name__}.Params)` with one `Param` "
                    "field each, read as self.params.KEY (docs/plugins.md, **Parameters.**)")

    def __init__(self, **values: Any) -> None:
        self.params = self.configure(type(self).__name__, values)

    @classmethod
    def configure(cls, owner: str, values: Mapping[str, Any]) -> Configurable.Params:
        """`values` validated by the plugin's `Params` (`owner` names it in errors)."""
        return parameters.validate(owner, cls.Params, values)


def level_values(num_levels: int, **tensor_options: Any) -> torch.Tensor:
    """Where each discrete level sits in data units: level k of K at -1 + 2k/(K-1).

    Every discrete dataset uses this convention, so conditional tasks, model-free
    baselines and noise-conditioned models agree on units.
    """
    import torch

    return torch.linspace(-1, 1, num_levels, **tensor_options)


Split = Literal["train", "validation", "test"]
"""A dataset's splits: models train on train, tuning reads validation, tables report test."""
SPLITS: tuple[Split, ...] = typing.get_args(Split)


class Dataset(Configurable):
    """Examples as tensors of shape ``(N, *shape)``, in the splits of `SPLITS`.

    Discrete data are integer tensors in ``0 .. num_levels - 1``; continuous
    data (2-D points) are float tensors and have ``num_levels = None``.
    Models train on "train"; every tuning choice (a sampler's step size, a noise
    level, a checkpoint) is made on "validation"; tables report "test".
    """

    name: str = ""  # the registered name; the runner sets it on each instance
    modality: ClassVar[str] = "image"
    shape: tuple[int, ...] = ()
    num_levels: int | None = None
    # A multi-source dataset (for separation) stacks its sources on axis 1:
    # load() gives (N, S, *source_shape) and source(name) the dataset of one source.
    sources: tuple[str, ...] = ()

    @abstractmethod
    def load(self, split: str) -> torch.Tensor:
        """Return the whole ``split`` ("train", "validation" or "test") as one tensor."""

    def check_split(self, split: str) -> None:
        """A clear error for a split name outside `SPLITS`."""
        if split not in SPLITS:
            raise ValueError(f"{self.name or type(self).__name__} has splits 'train', "
                             f"'validation' and 'test', not '{split}'")

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Values in data units -> the signal that metrics compare: the identity, except
        for companded data (mu-law audio expands back to the waveform)."""
        return x

    @property
    def dims(self) -> int:
        """Number of values per example (D), the unit of bits/dim and of ancestral NFE."""
        return math.prod(self.shape)

    def continuous(self, x: torch.Tensor) -> torch.Tensor:
        """Discrete levels as values in data units (see `level_values`); values that are
        already continuous (a denoiser's estimate between levels) pass through."""
        if self.num_levels is None or x.dtype.is_floating_point:
            return x.float()
        return level_values(self.num_levels, device=x.device)[x]

    @classmethod
    def variants(cls, params: Mapping[str, Any]) -> dict[str, list[Any]]:
        """Values of its own parameters that a grid sweeps by default, for the configuration
        `params` (those the grid gives): none, unless the data names them (a prompts
        file's categories, a cell each). A grid that sets or sweeps the key itself wins."""
        return {}

    def source(self, name: str) -> Dataset:
        """The single-source dataset of source `name` (multi-source datasets only)."""
        raise NotImplementedError(f"{type(self).__name__} has no sources")


class Model(Configurable):
    """A trained network plus what samplers need from it.

    ``provides`` names the capabilities it offers, each a Protocol of
    `arbench.plugin.capabilities` that the class must implement (checked when its spec
    loads it). The base has no capability methods: a model gets them from its own
    code or from the mixins of `arbench.plugin.capabilities` (`Logits`: implement `logits`,
    get `log_prob` and `sample_value`), so a sampler calling a method the model lacks
    fails type checking, not at run time.

    A model family is named once, by its registered name: arbench resolves which
    checkpoint to load (`arbench.plugin.specs.ModelSpec.checkpoint_path`) and hands every
    class method below that name as ``family`` (the shipped files, the command that
    rebuilds a checkpoint, the messages). Subclasses implement `load` (the checkpoint is
    `checkpoint`, verified by `arbench.training.checkpoints.load_for`) and `train` (the
    recipe `arbench train` runs).
    """

    class Params(Configurable.Params):
        checkpoint: str | None = Param(None, "checkpoint file (a folder of one per source "
                                       "for a multi-source dataset) instead of the shipped one")

    params: Params
    provides: ClassVar[frozenset[str]] = frozenset()

    def data_view(self, dataset: Dataset) -> Dataset:
        """The dataset as this model reads it, which the cell's task, sampler and metrics
        then see: `dataset` itself for a model of its levels; a model with its own
        encoding (a Hugging Face model's tokenizer) gives the dataset of its tokens."""
        return dataset

    @classmethod
    @abstractmethod
    def load(cls, dataset: Dataset, device: torch.device, *, family: str,
             checkpoint: Path | None, **params: Any) -> Model:
        """Load `checkpoint` (resolved by arbench: the given one or the shipped one; None
        for a model without a ``checkpoint`` parameter) for `dataset` onto `device`."""

    @classmethod
    @abstractmethod
    def train(cls, dataset: Dataset, out: Path, seed: int = 0, *, family: str,
              **options: Any) -> Path:
        """Train on `dataset`, write a verified checkpoint to `out`, return its path."""

    @classmethod
    def import_released(cls, source: Path, out: Path, *, family: str, **options: Any) -> Path:
        """Convert another project's released weights under `source` into an arbench
        checkpoint at `out` (`arbench import`); most models have none."""
        raise ValueError(f"model {family} has no importer of released weights; `arbench list "
                         "model` says which do")

    @classmethod
    def enumerable(cls, dataset: Dataset, seed: int) -> Model | None:
        """A tiny random instance over `dataset` (a few values of a few levels) whose joint
        distribution `arbench certify` enumerates, so that samplers that need this family
        (Hugging Face's own decoding needs a transformers model) get a verdict; None (the
        default): the core's table models serve."""
        return None

    @classmethod
    def shipped_checkpoint(cls, dataset_name: str, *, family: str, **params: Any
                           ) -> Path | None:
        """The shipped checkpoint for `dataset_name` when none is given:
        ``{family}-{dataset}.pt`` in the ``checkpoints/`` folder beside the model's module.
        Override when a parameter picks the file (a MADE's number of mixtures), or return
        None when `load` finds its files itself (one prior per source)."""
        from arbench.training.checkpoints import shipped_dir

        return shipped_dir(cls) / f"{family}-{dataset_name}.pt"

    @classmethod
    def checkpoint_sha256(cls, path: Path | None, dataset_name: str, /, *, family: str,
                          **params: Any) -> str:
        """The sha256 that names what `load` will read in a cell's key: the checkpoint's
        sidecar's (a folder of checkpoints: a hash of theirs); empty for nothing."""
        from arbench.training.checkpoints import recorded_sha256

        return recorded_sha256(path) if path is not None else ""


@dataclass
class SampleOutput:
    """Samples drawn by a sampler and the network function evaluations they cost.

    `diagnostics` is a small dict of JSON-able numbers or short lists about the run
    (iterations to convergence, acceptance rates): the record keeps it under
    ``diagnostics``, keyed by the method that returned it.
    """

    samples: torch.Tensor
    nfe: int
    diagnostics: dict[str, Any] = field(default_factory=dict)


@dataclass
class LikelihoodOutput:
    """Per-example negative log-likelihood in nats under the sampler's generative process,
    with `diagnostics` as in `SampleOutput`.

    NFE convention: `nfe` is the network calls per example the scoring made (ancestral:
    1, one parallel pass; an ARDM: its steps; distribution smoothing's bound: two per
    noisy draw), the figure arbench counts through the model (`arbench.run.counting`) and
    records; a sampler that reports fewer calls than it made fails its cell. The budget
    still bounds the generative process (ancestral scoring refuses a budget below D).
    """

    nll_nats: torch.Tensor
    nfe: int
    diagnostics: dict[str, Any] = field(default_factory=dict)


Exactness = Literal["exact", "distribution", "approximate"]
"""What a sampler claims of its samples: ``exact``, the ancestral sample itself for a seed
(bit for bit); ``distribution``, the model's distribution, by other draws; ``approximate``,
neither (Langevin dynamics, truncation, a budget below what exactness needs).
`arbench certify` tests the first two (`arbench.run.certify`), for any registered sampler."""


class Sampler(Configurable):
    """Draws samples (and, for density tasks, scores data) under an NFE budget.

    The budget is the grid's common axis: a sampler maps it onto its own knob
    and reports the NFE it actually used. ``budget=None`` means the sampler's
    default. Raise `Incompatible` when the budget cannot be honoured. `exactness`
    declares what its samples are (`Exactness`), and tables show it.
    """

    exactness: ClassVar[Exactness] = "approximate"

    def models_used(self) -> dict[str, dict[str, Any]]:
        """Registered models the sampler loads itself (a speculative draft), by name with
        their parameters: a cell is keyed by their checkpoints and code too, so its record
        is stale once one changes."""
        return {}

    def sample(
        self,
        model: Model | None,
        dataset: Dataset,
        n: int,
        budget: int | None,
        generator: torch.Generator,
        condition: Condition | None = None,
    ) -> SampleOutput:
        """`n` samples of `dataset`'s examples (levels, or continuous estimates for a
        condition) in at most `budget` network calls, every random draw from
        `generator`; `Incompatible` when the budget or the condition cannot be served."""
        raise NotImplementedError(f"{type(self).__name__} does not sample")

    def nll(self, model: Model | None, x: torch.Tensor, budget: int | None) -> LikelihoodOutput:
        """The negative log-likelihood in nats of each example of `x` under the sampler's
        generative process (the density task's bits/dim)."""
        raise NotImplementedError(f"{type(self).__name__} does not score data")


class Metric(Configurable):
    """A number computed from a task's outputs. Direction and unit live in its spec.

    A metric that is a mean over examples implements `per_example` (one value per
    example, shape ``(N,)``): the record keeps those values, so tables get intervals
    and `arbench compare` a paired test. A set-level metric (FID) overrides `measure`
    to return bootstrap replicates with its value. One that only implements
    `__call__` gives a plain number, shown and gated without an interval.
    """

    def per_example(self, *args: Any, **kwargs: Any) -> Any:
        """Per-example values ``(N,)`` (a tensor or array) whose mean is the metric."""
        raise NotImplementedError(f"{type(self).__name__} has no per-example values")

    def measure(self, *args: Any, **kwargs: Any) -> Measured:
        """The metric with what its uncertainty comes from (`arbench.results.statistics`)."""
        from arbench.results.statistics import Measured

        if type(self).per_example is Metric.per_example:
            return Measured(float(self(*args, **kwargs)))
        return Measured.of_examples(self.per_example(*args, **kwargs))

    def __call__(self, *args: Any, **kwargs: Any) -> float:
        return self.measure(*args, **kwargs).value


@dataclass
class CellContext:
    """Everything a task needs to run one grid cell, built by the runner."""

    dataset: Dataset
    model: Model | None
    sampler: Sampler
    budget: int | None
    seed: int
    device: torch.device
    generator: torch.Generator
    artifacts_dir: Path
    metric_factory: Any = field(repr=False, default=None)

    def metric(self, name: str, **params: Any) -> Metric:
        """An instance of the metric plugin `name` with `params` (e.g. a weights file)."""
        metric: Metric = self.metric_factory(name, **params)
        return metric

    def save_samples(self, **tensors: torch.Tensor) -> None:
        """Keep samples (continuous values, examples first) for the reports' sample panels.

        Saved with what a reporter needs to draw them without loading the dataset:
        modality, the dataset's example shape (sources first for a multi-source
        dataset), source names and sample rate.
        """
        from arbench.results.artifacts import SAMPLES_FILE, Samples

        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        samples = Samples(self.dataset.modality, tuple(self.dataset.shape),
                          tuple(self.dataset.sources),
                          getattr(self.dataset, "sample_rate", None),
                          {k: v.detach().float().cpu() for k, v in tensors.items()})
        target = self.artifacts_dir / SAMPLES_FILE
        try:
            samples.write(target)
        except (OSError, RuntimeError) as error:  # torch reports a full disk as RuntimeError
            raise OSError(f"cannot write {target} ({error}); is the disk full? free space "
                          "or give another --results-dir (nothing partial was left)") from None


@dataclass
class TaskOutput:
    """Metric values by metric-plugin name, and the NFE the sampler used. A value is a
    `Measured` (from ``metric.measure(...)``: the record keeps its per-example values
    or replicates) or a plain float (kept without uncertainty)."""

    metrics: Mapping[str, float | Measured]
    nfe: int
    extra: dict[str, Any] = field(default_factory=dict)


class Task(Configurable):
    """Runs one cell: feeds the sampler, scores what comes back with metric plugins."""

    @abstractmethod
    def run(self, cell: CellContext) -> TaskOutput:
        """Draw or score with ``cell.sampler`` on ``cell.dataset`` and return the metrics
        (each from a metric plugin, ``cell.metric(name)``) and the sampler's NFE."""

