"""Results store: one JSON record per finished cell, written atomically.

Layout: ``<results>/<run>/cells/<key>.json``. A record is written to a temporary
file in the same folder and renamed into place, so a killed run leaves either
the whole record or nothing, and a rerun resumes from what is there.

Every record read is checked against the schema of `arbench.results.record.Record` (one
of an older schema is migrated, and listed in `Store.migrated`): a file
that is not JSON, or lacks what its status needs (an ok record's metrics and NFE, a
failed or skipped record's reason), is *damaged*: it counts as missing, so a rerun
recomputes and replaces it, and readers list it in `Store.damaged` instead of
crashing on it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from arbench.errors import RunBusy, StoreError
from arbench.results.record import SCHEMA_VERSION, Record, problem

LOCK_FILE, OWNER_FILE = ".lock", ".lock.pid"


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


class Store:
    """One run folder: its records (one JSON file per cell), the run's metadata, and the
    lock that lets one process write it at a time."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.cells_dir = self.run_dir / "cells"
        self.damaged: dict[Path, str] = {}  # damaged records seen by `records`, and why
        self.migrated: list[Path] = []  # records of an older schema `records` migrated

    def path(self, key: str) -> Path:
        """The file of cell `key`'s record."""
        return self.cells_dir / f"{key}.json"

    def write(self, record: Record) -> Path:
        """Atomically write `record` (replacing any earlier record of the same cell)."""
        self.cells_dir.mkdir(parents=True, exist_ok=True)

        def dump(path: Path) -> None:
            with open(path, "w") as handle:
                json.dump(record.to_json(), handle, indent=2, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())  # on disk before the rename makes it the record

        return atomic_write(self.path(record.key), dump)

    def read(self, key: str) -> Record | None:
        """Cell `key`'s record, None when it has none; a StoreError when it is damaged."""
        path = self.path(key)
        if not path.exists():
            return None
        return _load(path)[0]

    def is_finished(self, key: str, current: Callable[[Record], bool] | None = None
                    ) -> bool:
        """True when the cell has an ok or skipped record (made by today's code, when
        `current` tells); failed cells are rerun."""
        try:
            record = self.read(key)
        except StoreError:
            return False  # a corrupt record is recomputed and replaced
        if record is None or not record.finished:
            return False
        return current is None or current(record)

    def pending(self, cells: Iterable[Any], force: bool = False,
                current: Callable[[Record], bool] | None = None) -> list[Any]:
        """The cells (anything with a `key`) without a finished record; all when `force`.
        `current(record)` says whether a record was made by the code that would run now
        (`arbench.run.provenance.is_current`): a stale one is rerun and replaced."""
        return [cell for cell in cells if force or not self.is_finished(cell.key, current)]

    def records(self) -> Iterator[Record]:
        """Every valid record of the run, in file-name order; damaged ones are skipped and
        listed in `damaged` (a rerun recomputes them)."""
        if not self.cells_dir.is_dir():
            raise StoreError(f"{self.run_dir} holds no results (no cells/ folder); run arbench run")
        self.damaged, self.migrated = {}, []
        for path in sorted(self.cells_dir.glob("*.json")):
            try:
                record, version = _load(path)
            except StoreError as error:
                self.damaged[path] = str(error)
                continue
            if version < SCHEMA_VERSION:
                self.migrated.append(path)
            yield record

    def damaged_records(self) -> dict[Path, str]:
        """Every damaged record of the run and why (reading each record once)."""
        for _ in self.records():
            pass
        return dict(self.damaged)

    def write_meta(self, name: str, payload: dict[str, Any]) -> None:
        """Write the run's metadata file `name` (grid.json) atomically."""
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

    def adopt_suite(self, text: str, source: Path) -> None:
        """Keep the suite file's `text` (as read from `source`) beside its results:
        `arbench compare` reads its gate there. A leaderboard's own folder keeps its file."""
        target = self.run_dir / "suite.yaml"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not (target.exists() and target.samefile(source)):
            atomic_write(target, lambda path: path.write_text(text, encoding="utf-8"))


def _load(path: Path) -> tuple[Record, int]:
    """The record at `path` and the schema it was written in."""
    try:
        text = path.read_bytes()
    except OSError as error:
        raise StoreError(f"{path} cannot be read ({error.strerror})") from None
    try:
        record = Record.model_validate_json(text)
    except ValidationError as error:
        first = error.errors()[0]
        if first["type"] == "json_invalid":
            raise StoreError(f"{path} is not a valid result record (not JSON: "
                             f"{first['msg']})") from None
        raise StoreError(f"{path} is not a valid result record ({problem(error)})") from None
    if record.key != path.stem:
        raise StoreError(f"{path} holds the record of cell {record.key}, not {path.stem}")
    return record, SCHEMA_VERSION if b'"schema_version"' in text else 1
