"""The result record: one typed, versioned class from the runner to every reader.

The runner builds a `Record` per cell, the store writes it as JSON and validates it
on every read, and report, compare, leaderboards, reporters, executors and
benchmarks take it as it is. A record has parts: its `Identity` (which cell), its
`Configuration` (what set it up), its metrics, its `Cost` (counted and timed by
arbench) and its `Provenance` (what made it), beside its status and the task's and
sampler's own facts (``record.identity.task``, ``record.metrics["fid"].value``,
``record.cost.nfe``). What a record must hold to be read at all (the schema) lives
here too: a metric value is a finite float32-range number, never a boolean; stored
per-example values decode to finite numbers; an ok record has its NFE and metrics, a
failed or skipped one its reason. A file that breaks this is *damaged*
(`arbench.results.store`).

Every record carries its `schema_version`. A record of schema 1 (flat, before the
parts) is read by `migrate`; one of a newer schema is refused with a message saying
to upgrade. Fields a newer arbench adds within a schema are kept (``extra="allow"``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    JsonValue,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from arbench.results.direction import Direction
from arbench.results.identity import cell_label, identity, variant_label

if TYPE_CHECKING:
    from arbench.results.statistics import Measured

SCHEMA_VERSION = 2
"""The record schema this arbench writes and reads (1: flat records, migrated on read)."""
Status = Literal["ok", "skipped", "failed"]
Json = dict[str, JsonValue]
"""A mapping of JSON values: what parameters, a task's facts and diagnostics may hold."""
FINISHED: tuple[Status, ...] = ("ok", "skipped")
FLOAT32_MAX = 3.4028234663852886e38  # per-example values are stored as float32
# How far a value may be from the mean of its per-example values, relative to their mean
# magnitude: float32 storage moves each by 6e-8 of itself at most.
MEAN_TOLERANCE = 1e-6


def _number(value: float, what: str) -> float:
    """`value` if it is finite and within float32's range, else a ValueError naming it."""
    if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
        raise ValueError(f"{what} {value!r} is not a finite number in float32's range")
    return value


def _numbers(text: str) -> None:
    """Per-example values or replicates (base64 float32) that are all finite."""
    import numpy as np

    from arbench.results.statistics import decode

    try:
        values = decode(text)
    except ValueError as error:
        raise ValueError(f"stored values cannot be decoded ({error})") from None
    if not np.isfinite(values).all():
        raise ValueError(f"{int((~np.isfinite(values)).sum())} stored value(s) are NaN or "
                         "infinite")


class Part(BaseModel):
    """A part of a record: fields a newer arbench adds are kept when an older one reads it."""

    model_config = ConfigDict(extra="allow")


class MetricEntry(Part):
    """One metric of a cell: its value, direction and unit, and what tests need
    (per-example values with their example ids, or bootstrap replicates)."""

    value: StrictFloat | StrictInt  # a boolean is no metric value
    direction: Direction
    unit: str
    per_example: str | None = None
    ids: str | None = None
    paired: bool = True
    replicates: str | None = None

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        return _number(value, "value")

    @field_validator("per_example", "replicates")
    @classmethod
    def _finite_values(cls, text: str | None) -> str | None:
        if text is not None:
            _numbers(text)
        return text

    @model_validator(mode="after")
    def _mean_of_examples(self) -> MetricEntry:
        """A value with per-example values is their mean (up to their float32 storage)."""
        if self.per_example is not None:
            from arbench.results.statistics import decode

            values = decode(self.per_example)
            mean, scale = float(values.mean()), float(abs(values).mean())
            if abs(self.value - mean) > MEAN_TOLERANCE * scale + 1e-12:
                raise ValueError(f"value {self.value!r} is not the mean of its "
                                 f"{values.size} per-example values, {mean!r}")
        return self

    def measured(self) -> Measured:
        """The value with its per-example values or replicates decoded."""
        from arbench.results.statistics import Measured, decode, decode_ids

        per_example = decode(self.per_example) if self.per_example is not None else None
        ids = decode_ids(self.ids) if per_example is not None and self.ids is not None else None
        replicates = decode(self.replicates) if self.replicates is not None else None
        return Measured(float(self.value), per_example, ids, self.paired, replicates)


class Identity(Part):
    """Which cell a record is of: the grid's names, budget and seed, the swept parameters
    (``{"superres": {"ratio": 8}}``) and the data's modality, which place it in a table."""

    task: str
    dataset: str
    sampler: str
    seed: StrictInt
    model: str | None = None
    budget: StrictInt | None = None
    swept: dict[str, Json] = {}
    modality: str = ""

    @property
    def variant(self) -> str:
        """The swept parameters as a label, e.g. ``ratio=8``."""
        return variant_label(self.swept, self.task)

    def label(self) -> str:
        """``task/dataset/model/sampler variant budget=B seed=S`` (`cell_label`)."""
        return cell_label(self.task, self.dataset, self.model, self.sampler, self.variant,
                          self.budget, self.seed)


class Configuration(Part):
    """What set the cell up besides its identity: every plugin's parameters as given, the
    checkpoints and data folder it read by fingerprint, and its sampler's exactness claim
    (`arbench.plugin.contracts.Exactness`)."""

    params: dict[str, Json] = {}
    checkpoint_sha256: str = ""
    data_fingerprint: str = ""
    exactness: str = ""


class Cost(Part):
    """What the cell cost, measured by arbench: network calls counted through the model
    (and the sampler's own figure beside them), positions evaluated and FLOPs per
    example, the scored calls' seconds (counted and metered), the sampler's seconds in
    timed replays after a warm-up (each timing, and their mean) and the task's reference
    sampler's, timed in turn with them, a target call's and a drafted value's seconds in
    the reference's steps (`arbench.run.cost`), throughput, the cell's wall time and peak
    memory."""

    nfe: StrictInt | None = None
    nfe_reported: StrictInt | None = None
    positions: StrictFloat | StrictInt | None = None
    flops: StrictFloat | StrictInt | None = None
    counted_call_s: StrictFloat | StrictInt | None = None
    sampler_time_s: StrictFloat | StrictInt | None = None
    sampler_timings_s: list[StrictFloat | StrictInt] | None = None
    reference_timings_s: list[StrictFloat | StrictInt] | None = None
    call_steps: StrictFloat | StrictInt | None = None
    draft_steps: StrictFloat | StrictInt | None = None
    examples_per_s: StrictFloat | StrictInt | None = None
    wall_time_s: StrictFloat | StrictInt | None = None
    peak_memory_mb: StrictFloat | StrictInt | None = None

    @field_validator("nfe", "nfe_reported", "positions", "flops", "counted_call_s",
                     "sampler_time_s", "call_steps", "draft_steps", "examples_per_s",
                     "wall_time_s", "peak_memory_mb")
    @classmethod
    def _count(cls, value: float | None, info: ValidationInfo) -> float | None:
        """A count, rate or duration: finite and not negative (NaN is no time)."""
        if value is not None and _number(value, str(info.field_name)) < 0:
            raise ValueError(f"{info.field_name} {value} is negative")
        return value

    @field_validator("sampler_timings_s", "reference_timings_s")
    @classmethod
    def _seconds(cls, values: list[float] | None) -> list[float] | None:
        for value in values or []:
            if _number(value, "timing") < 0:
                raise ValueError(f"timing {value} is negative")
        return values

    @model_validator(mode="after")
    def _consistent(self) -> Cost:
        """The sampler's time is the mean of its timings, as the runner wrote it, and the
        reference's timings pair with them, round by round."""
        timings = self.sampler_timings_s
        paired = self.reference_timings_s
        if paired is not None and len(paired) != len(timings or []):
            raise ValueError(f"reference_timings_s has {len(paired)} round(s), the sampler's "
                             f"timings {len(timings or [])}")
        if timings and self.sampler_time_s is not None and not math.isclose(
                self.sampler_time_s, sum(timings) / len(timings), rel_tol=1e-9):
            raise ValueError(f"sampler_time_s {self.sampler_time_s} is not the mean of its "
                             f"{len(timings)} timing(s), {sum(timings) / len(timings)}")
        return self


class Provenance(Part):
    """What made the record: the run, the code of every plugin it used (source hashes:
    a record of other code is stale, `arbench.run.provenance.is_current`), the plugin
    packages' versions, the device, torch, arbench and git state, the worker and when."""

    run: str = ""
    code: dict[str, str] = {}
    plugin_versions: dict[str, str] = {}
    device: str = ""
    torch_version: str = ""
    arbench_version: str = ""
    git_commit: str = ""
    git_dirty: StrictBool | None = None
    worker: str = ""
    finished_at: str = ""


class Record(Part):
    """What one cell of a grid produced, and everything that made it (its key): its parts,
    its status (a failed or skipped cell's reason), the task's facts (`extra`, e.g.
    sample counts) and the sampler's diagnostics by method (``{"sample": {...}}``)."""

    schema_version: Literal[2] = 2  # SCHEMA_VERSION
    key: str
    status: Status
    identity: Identity
    configuration: Configuration = Configuration()
    metrics: dict[str, MetricEntry] = {}
    cost: Cost = Cost()
    provenance: Provenance = Provenance()
    reason: str | None = None
    traceback: str | None = None
    extra: Json = {}
    diagnostics: dict[str, Json] = {}

    @model_validator(mode="before")
    @classmethod
    def _readable(cls, data: Any) -> Any:
        """A schema-1 record migrated; a newer schema refused, saying what to do."""
        if not isinstance(data, dict):
            return data
        version = data.get("schema_version", 1 if "identity" not in data else SCHEMA_VERSION)
        if version == 1:
            return migrate(data)
        if isinstance(version, int) and not isinstance(version, bool) and (
                version > SCHEMA_VERSION):
            raise ValueError(f"a record of schema {version}, newer than this arbench reads "
                             f"({SCHEMA_VERSION}); upgrade arbench to read it")
        return data

    @model_validator(mode="after")
    def _complete(self) -> Record:
        if self.status == "ok" and (self.cost.nfe is None or not self.metrics):
            raise ValueError("an ok record needs its nfe and metrics")
        if self.status != "ok" and not self.reason:
            raise ValueError(f"a {self.status} record needs its reason")
        return self

    @property
    def finished(self) -> bool:
        """Ok or skipped: a rerun leaves it (failed cells are retried)."""
        return self.status in FINISHED

    def params_of(self, plugin: str | None) -> Json:
        """The parameters given to `plugin` (none for no plugin)."""
        return self.configuration.params.get(plugin, {}) if plugin else {}

    def setting(self) -> str:
        """What makes two cells score the same data the same way: the task, the data and
        the seed, with the task's and the dataset's parameters."""
        cell = self.identity
        return identity([cell.task, cell.dataset, cell.seed, self.params_of(cell.task),
                         self.params_of(cell.dataset)])

    def model_setup(self) -> str:
        """The model as configured: its name and parameters (none: model-free)."""
        return identity([self.identity.model, self.params_of(self.identity.model)])

    def entry(self) -> str:
        """What one entry of a table pools over seeds: every field and parameter but the
        seed."""
        cell = self.identity
        return identity([cell.task, cell.dataset, cell.model, cell.sampler, cell.swept,
                         cell.budget, self.configuration.params])

    def to_json(self) -> dict[str, Any]:
        """The JSON form the store writes (every field, newer ones included); a value JSON
        has no type for (a numpy integer in a task's `extra`) is written as its text."""
        return self.model_dump(mode="json", fallback=str)


_PARTS: dict[str, type[Part]] = {"identity": Identity, "configuration": Configuration,
                                  "cost": Cost, "provenance": Provenance}


def migrate(flat: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 record (every field at the top, before records had parts) in schema 2:
    the same values, each in its part. Its ``variant`` label is derived now, so dropped."""
    data = {key: value for key, value in flat.items() if key != "variant"}
    for part, model in _PARTS.items():
        data[part] = {name: data.pop(name) for name in model.model_fields if name in data}
    return {**data, "schema_version": SCHEMA_VERSION}


def plain(value: Any) -> JsonValue:
    """`value` as JSON values, for a record's `extra` and diagnostics: a numpy or torch
    scalar as its number, a tuple as a list, anything else JSON has no type for as its
    text."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return plain(item())
        except (TypeError, ValueError, RuntimeError):  # not a scalar: an array of many
            pass
    return str(value)


def problem(error: ValidationError) -> str:
    """The first thing a record's validation found wrong: ``where: what``."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "record"
    return f"{where}: {first['msg']}"


def record_problem(data: Any) -> str | None:
    """What makes `data` unusable as a record (None: it is a valid one)."""
    try:
        Record.model_validate(data)
    except ValidationError as error:
        return problem(error)
    return None
