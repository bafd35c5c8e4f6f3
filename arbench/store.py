"""Results store: one JSON record per finished cell, written atomically.

Layout: ``<results>/<run>/cells/<key>.json``. A record is written to a temporary
file in the same folder and renamed into place, so a killed run leaves either
the whole record or nothing, and a rerun resumes from what is there.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

FINISHED = ("ok", "skipped")


class StoreError(Exception):
    """A results folder or record cannot be read."""


class Store:
    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.cells_dir = self.run_dir / "cells"

    def path(self, key: str) -> Path:
        return self.cells_dir / f"{key}.json"

    def write(self, record: dict[str, Any]) -> Path:
        """Atomically write `record` (replacing any earlier record of the same cell)."""
        self.cells_dir.mkdir(parents=True, exist_ok=True)
        target = self.path(record["key"])
        with tempfile.NamedTemporaryFile(
            "w", dir=self.cells_dir, prefix=".", suffix=".tmp", delete=False
        ) as handle:
            json.dump(record, handle, indent=2, sort_keys=True, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, target)
        return target

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
        """Every record of the run, in file-name order; a corrupt one is an error naming it."""
        if not self.cells_dir.is_dir():
            raise StoreError(f"{self.run_dir} holds no results (no cells/ folder); run arbench run")
        for path in sorted(self.cells_dir.glob("*.json")):
            yield _load(path)

    def write_meta(self, name: str, payload: dict[str, Any]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / name).write_text(json.dumps(payload, indent=2, default=str) + "\n")

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
        raise StoreError(f"{path} is not a valid result record ({error}); "
                         "delete it and rerun to recompute that cell") from None
    if not isinstance(record, dict) or "key" not in record or "status" not in record:
        raise StoreError(f"{path} is not a result record (no 'key' or 'status')")
    return record
