"""The result record: one typed class from the runner to every reader.

The runner builds a `Record` per cell, the store writes it as JSON and validates it
on every read, and report, compare, leaderboards, reporters, executors and
benchmarks take it as it is (``record.metrics["fid"].value``, ``record.nfe``).
What a record must hold to be read at all (the schema) lives here too: a metric
value is a finite float32-range number, never a boolean; stored per-example values
decode to finite numbers; an ok record has its NFE and metrics, a failed or skipped
one its reason. A file that breaks this is *damaged* (`arbench.results.store`).

Fields a newer arbench adds are kept (``extra="allow"``), so older code reads newer
records without losing them.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from arbench.results.direction import Direction

if TYPE_CHECKING:
    from arbench.results.statistics import Measured

Status = Literal["ok", "skipped", "failed"]
FINISHED: tuple[Status, ...] = ("ok", "skipped")
FLOAT32_MAX = 3.4028234663852886e38  # per-example values are stored as float32


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


class MetricEntry(BaseModel):
    """One metric of a cell: its value, direction and unit, and what tests need
    (per-example values with their example ids, or bootstrap replicates)."""

    model_config = ConfigDict(extra="allow")
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

    def measured(self) -> Measured:
        """The value with its per-example values or replicates decoded."""
        from arbench.results.statistics import Measured, decode, decode_ids

        per_example = decode(self.per_example) if self.per_example is not None else None
        ids = decode_ids(self.ids) if per_example is not None and self.ids is not None else None
        replicates = decode(self.replicates) if self.replicates is not None else None
        return Measured(float(self.value), per_example, ids, self.paired, replicates)


class Record(BaseModel):
    """What one cell of a grid produced, and everything that made it (its key)."""

    model_config = ConfigDict(extra="allow")
    key: str
    status: Status
    task: str
    dataset: str
    sampler: str
    seed: StrictInt
    run: str = ""
    modality: str = ""
    model: str | None = None
    budget: StrictInt | None = None
    variant: str = ""
    swept: dict[str, dict[str, Any]] = {}
    params: dict[str, dict[str, Any]] = {}
    plugin_versions: dict[str, str] = {}
    code: dict[str, str] = {}
    checkpoint_sha256: str = ""
    device: str = ""
    torch_version: str = ""
    arbench_version: str = ""
    git_commit: str = ""
    git_dirty: StrictBool | None = None
    worker: str = ""
    finished_at: str = ""
    reason: str | None = None
    traceback: str | None = None
    # ok records: what was measured, and what it cost
    metrics: dict[str, MetricEntry] = {}
    nfe: StrictInt | None = None
    nfe_reported: StrictInt | None = None
    sampler_time_s: StrictFloat | StrictInt | None = None
    sampler_timings_s: list[StrictFloat | StrictInt] | None = None
    examples_per_s: StrictFloat | StrictInt | None = None
    wall_time_s: StrictFloat | StrictInt | None = None
    peak_memory_mb: StrictFloat | StrictInt | None = None
    extra: dict[str, Any] = {}
    diagnostics: dict[str, Any] = {}
    exactness: str = ""  # the sampler's claim (arbench.plugin.contracts.Exactness); "" before it

    @field_validator("nfe")
    @classmethod
    def _calls(cls, nfe: int | None) -> int | None:
        if nfe is not None and nfe < 0:
            raise ValueError(f"nfe {nfe} is negative")
        return nfe

    @field_validator("sampler_timings_s")
    @classmethod
    def _seconds(cls, values: list[float] | None) -> list[float] | None:
        for value in values or []:
            if _number(value, "timing") < 0:
                raise ValueError(f"timing {value} is negative")
        return values

    @model_validator(mode="after")
    def _complete(self) -> Record:
        if self.status == "ok" and (self.nfe is None or not self.metrics):
            raise ValueError("an ok record needs its nfe and metrics")
        if self.status != "ok" and not self.reason:
            raise ValueError(f"a {self.status} record needs its reason")
        return self

    @property
    def finished(self) -> bool:
        """Ok or skipped: a rerun leaves it (failed cells are retried)."""
        return self.status in FINISHED

    def to_json(self) -> dict[str, Any]:
        """The JSON form the store writes (every field, newer ones included); a value JSON
        has no type for (a numpy integer in a task's `extra`) is written as its text."""
        return self.model_dump(mode="json", fallback=str)

    def __getitem__(self, name: str) -> Any:
        """``record["nfe"]``, as records were read before they were typed: still works
        for a third party's reporter, with a warning naming the attribute to use."""
        warnings.warn(f'record["{name}"] is deprecated: use record.{name} (arbench.Record)',
                      DeprecationWarning, stacklevel=2)
        if name == "metrics":
            return {metric: entry.model_dump() for metric, entry in self.metrics.items()}
        try:
            return getattr(self, name)
        except AttributeError:
            raise KeyError(name) from None


def record_problem(data: Any) -> str | None:
    """What makes `data` unusable as a record (None: it is a valid one)."""
    try:
        Record.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "record"
        return f"{where}: {first['msg']}"
    return None
