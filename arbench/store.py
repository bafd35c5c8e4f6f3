"""Results store: one JSON record per finished cell, written atomically.

Layout: ``<results>/<run>/cells/<key>.json``. A record is written to a temporary
file in the same folder and renamed into place, so a killed run leaves either
the whole record or nothing, and a rerun resumes from what is there.

Every record read is checked against one schema (`record_problem`): a file that is
not JSON, or lacks what its status needs (an ok record's metrics and NFE, a
failed or skipped record's reason), is *damaged*: it counts as missing, so a rerun
recomputes and replaces it, and readers list it in `Store.damaged` instead of
crashing on it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FINISHED = ("ok", "skipped")


LOCK_FILE, OWNER_FILE = ".lock", ".lock.pid"


class StoreError(Exception):
    """A results folder or record cannot be read."""


class RunBusy(StoreError):
    """Another process holds the run folder's lock."""


def atomic_write(path: Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(temporary)`` and rename the result onto `path`: readers see the old
    file or the whole new one, and a failure (a full disk) leaves no partial file."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def record_problem(record: Any) -> str | None:
    """What makes `record` unusable (None: it is a valid result record)."""
    from pydantic import ValidationError

    try:
        _record_schema().validate_python(record)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "record"
        return f"{where}: {first['msg']}"
    return None


class Store:
    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.cells_dir = self.run_dir / "cells"
        self.damaged: dict[Path, str] = {}  # damaged records seen by `records`, and why

    def path(self, key: str) -> Path:
        return self.cells_dir / f"{key}.json"

    def write(self, record: dict[str, Any]) -> Path:
        """Atomically write `record` (replacing any earlier record of the same cell)."""
        self.cells_dir.mkdir(parents=True, exist_ok=True)

        def dump(path: Path) -> None:
            with open(path, "w") as handle:
                json.dump(record, handle, indent=2, sort_keys=True, default=str)
                handle.flush()
                os.fsync(handle.fileno())  # on disk before the rename makes it the record

        return atomic_write(self.path(record["key"]), dump)

    def read(self, key: str) -> dict[str, Any] | None:
        path = self.path(key)
        if not path.exists():
            return None
        return _load(path)

    def is_finished(self, key: str, current: Callable[[dict[str, Any]], bool] | None = None
                    ) -> bool:
        """True when the cell has an ok or skipped record (made by today's code, when
        `current` tells); failed cells are rerun."""
        try:
            record = self.read(key)
        except StoreError:
            return False  # a corrupt record is recomputed and replaced
        if record is None or record.get("status") not in FINISHED:
            return False
        return current is None or current(record)

    def pending(self, cells: Iterable[Any], force: bool = False,
                current: Callable[[dict[str, Any]], bool] | None = None) -> list[Any]:
        """The cells (anything with a `key`) without a finished record; all when `force`.
        `current(record)` says whether a record was made by the code that would run now
        (`arbench.provenance.is_current`): a stale one is rerun and replaced."""
        return [cell for cell in cells if force or not self.is_finished(cell.key, current)]

    def records(self) -> Iterator[dict[str, Any]]:
        """Every valid record of the run, in file-name order; damaged ones are skipped and
        listed in `damaged` (a rerun recomputes them)."""
        if not self.cells_dir.is_dir():
            raise StoreError(f"{self.run_dir} holds no results (no cells/ folder); run arbench run")
        self.damaged = {}
        for path in sorted(self.cells_dir.glob("*.json")):
            try:
                yield _load(path)
            except StoreError as error:
                self.damaged[path] = str(error)

    def write_meta(self, name: str, payload: dict[str, Any]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(payload, indent=2, default=str) + "\n"
        atomic_write(self.run_dir / name, lambda path: path.write_text(text))

    @contextmanager
    def writer(self, wait: bool = False) -> Iterator[None]:
        """Hold the run folder's lock: one process writes a run at a time. Another
        arbench process on the same folder is a `RunBusy` naming its pid (or, with
        `wait`, this blocks until it is done)."""
        from filelock import FileLock, Timeout

        self.run_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.run_dir / LOCK_FILE, timeout=-1 if wait else 0)
        owner = self.run_dir / OWNER_FILE
        try:
            lock.acquire()
        except Timeout:
            holder = owner.read_text().strip() if owner.exists() else "unknown"
            raise RunBusy(f"another arbench process (pid {holder}) is writing {self.run_dir}; "
                          "wait for it to finish, or pass --wait to queue behind it") from None
        try:
            owner.write_text(f"{os.getpid()}\n")
            for stale in self.cells_dir.glob(".*.tmp"):  # left by a writer killed mid-write
                stale.unlink(missing_ok=True)
            yield
        finally:
            owner.unlink(missing_ok=True)
            lock.release()

    def adopt_suite(self, suite_file: Path) -> None:
        """Keep a copy of the suite beside its results: `arbench compare` reads its gate."""
        target = self.run_dir / "suite.yaml"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not target.exists() or not target.samefile(suite_file):
            shutil.copyfile(suite_file, target)


def _load(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise StoreError(f"{path} is not a valid result record (not JSON: {error})") from None
    except OSError as error:
        raise StoreError(f"{path} cannot be read ({error.strerror})") from None
    problem = record_problem(record)
    if problem is not None:
        raise StoreError(f"{path} is not a valid result record ({problem})")
    if record["key"] != path.stem:
        raise StoreError(f"{path} holds the record of cell {record['key']}, not {path.stem}")
    return dict(record)


_SCHEMA: Any = None
FLOAT32_MAX = 3.4028234663852886e38  # per-example values are stored as float32


def _number(value: float, what: str) -> float:
    """`value` if it is finite and within float32's range (the range per-example values
    are kept in), else a ValueError naming it."""
    import math

    if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
        raise ValueError(f"{what} {value!r} is not a finite number in float32's range")
    return value


def _numbers(text: str) -> None:
    """Per-example values or replicates (base64 float32) that are all finite."""
    import numpy as np

    from arbench.statistics import decode

    try:
        values = decode(text)
    except ValueError as error:
        raise ValueError(f"stored values cannot be decoded ({error})") from None
    if not np.isfinite(values).all():
        raise ValueError(f"{int((~np.isfinite(values)).sum())} stored value(s) are NaN or "
                         "infinite")


def _record_schema() -> Any:
    """The pydantic schema of a record, built on first use (imports stay cheap)."""
    global _SCHEMA
    if _SCHEMA is None:
        from typing import Literal

        from pydantic import (
            BaseModel,
            ConfigDict,
            StrictFloat,
            StrictInt,
            TypeAdapter,
            field_validator,
            model_validator,
        )

        class MetricEntry(BaseModel):
            model_config = ConfigDict(extra="allow")
            value: StrictFloat | StrictInt  # a boolean is no metric value
            direction: Literal["lower", "higher"]
            unit: str
            per_example: str | None = None
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

        class Record(BaseModel):
            model_config = ConfigDict(extra="allow")
            key: str
            status: Literal["ok", "skipped", "failed"]
            task: str
            dataset: str
            sampler: str
            seed: StrictInt
            model: str | None = None
            budget: StrictInt | None = None
            reason: str | None = None
            nfe: StrictInt | None = None
            metrics: dict[str, MetricEntry] = {}
            sampler_timings_s: list[StrictFloat | StrictInt] | None = None

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

        _SCHEMA = TypeAdapter(Record)
    return _SCHEMA
