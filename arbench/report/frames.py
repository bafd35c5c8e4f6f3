"""The tidy frames a report is built from: one row per (ok cell, metric), and one per
skipped or failed cell. CSV and parquet reporters write them as they are."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from arbench.results.record import Record
from arbench.results.speed import cost_rows
from arbench.training.checkpoints import UNVERIFIED

CELL_COLUMNS = ["task", "dataset", "variant", "model", "sampler", "budget"]


def long_frame(records: Iterable[Record],
               references: Mapping[str, str | None] | None = None,
               claims: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per (ok cell, metric): the tidy form that pandas and CSV users want.

    The sampler's time, its speed-up against the task's reference and a decoding
    sampler's acceptance (`arbench.results.speed`; `references`: each task's reference
    sampler) get rows too, so
    tables show cost beside quality; they are not in the record's metrics, so
    `arbench compare` never gates on them. `claims`: each record's claim as shown (by key,
    `arbench.results.certificate.claim_labels`); by default the claim as declared.
    """
    records = list(records)
    timed = cost_rows(records, references or {})
    rows = []
    for record in records:
        if record.status != "ok":
            continue
        values = {metric: (entry.measured(), entry.direction, entry.unit)
                  for metric, entry in record.metrics.items()}
        values |= timed.get(record.key, {})
        for metric, (measured, direction, unit) in values.items():
            rows.append({
                **cell_fields(record), "seed": record.identity.seed, "nfe": record.cost.nfe,
                "exactness": (claims or {}).get(record.key, record.configuration.exactness),
                "metric": metric,
                "value": measured.value, "direction": direction, "unit": unit,
                "wall_time_s": record.cost.wall_time_s,
                "sampler_time_s": record.cost.sampler_time_s, "key": record.key,
                "params": record.configuration.params, "swept": record.identity.swept,
                "modality": record.identity.modality, "measured": measured,
            })
    columns = [*CELL_COLUMNS, "seed", "nfe", "exactness", "metric", "value", "direction", "unit",
               "wall_time_s", "sampler_time_s", "key", "params", "swept", "modality", "measured"]
    return pd.DataFrame(rows, columns=columns)


def cell_fields(record: Record) -> dict[str, Any]:
    """The `CELL_COLUMNS` of a record; the model marked when its checkpoint had no sidecar
    to verify it by."""
    cell = record.identity
    model = cell.model
    if model and record.configuration.checkpoint_sha256.startswith(UNVERIFIED):
        model = f"{model} (unverified)"
    return {"task": cell.task, "dataset": cell.dataset, "variant": cell.variant,
            "model": model, "sampler": cell.sampler, "budget": cell.budget}


def problems_frame(records: Iterable[Record]) -> pd.DataFrame:
    """Skipped and failed cells with their reasons ("-" for no model, "default" for the
    sampler's own budget)."""
    rows = [{**cell_fields(record), "model": record.identity.model or "-",
             "budget": "default" if record.identity.budget is None else record.identity.budget,
             "seed": record.identity.seed, "status": record.status, "reason": record.reason}
            for record in records if record.status != "ok"]
    return pd.DataFrame(rows, columns=[*CELL_COLUMNS, "seed", "status", "reason"])
