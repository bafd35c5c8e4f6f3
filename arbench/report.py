"""Tables from result records: a long frame for analysis, tables for people.

Each task with a `TableLayout` gets its paper-style table (e.g. super-resolution
dB with ratios as rows and dataset x sampler as columns). The summary has one
row per task/dataset/variant/model/sampler/budget. Every cell shows the mean
over seeds (with a +- standard deviation when there are several seeds).
Skipped and failed cells are listed with reasons.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from tabulate import tabulate

if TYPE_CHECKING:
    from arbench.specs import TableLayout

CELL_COLUMNS = ["task", "dataset", "variant", "model", "sampler", "budget"]


def long_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per (ok cell, metric): the tidy form that pandas and CSV users want."""
    rows = []
    for record in records:
        if record["status"] != "ok":
            continue
        for metric, entry in record["metrics"].items():
            rows.append({
                **{column: record.get(column) for column in CELL_COLUMNS},
                "seed": record["seed"], "nfe": record["nfe"], "metric": metric,
                "value": entry["value"], "direction": entry["direction"], "unit": entry["unit"],
                "wall_time_s": record.get("wall_time_s"), "key": record["key"],
            })
    columns = [*CELL_COLUMNS, "seed", "nfe", "metric", "value", "direction", "unit",
               "wall_time_s", "key"]
    return pd.DataFrame(rows, columns=columns)


def _mean_spread(values: pd.Series) -> str:
    if len(values) > 1:
        return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}"
    return f"{values.mean():.3f}"


def _displayable(long: pd.DataFrame) -> pd.DataFrame:
    """Fill the fields that may be empty with printable values, in a stable row order."""
    frame = long.assign(model=long["model"].fillna("-"), variant=long["variant"].fillna(""),
                        budget=long["budget"].map(lambda b: "default" if pd.isna(b) else int(b)))
    return frame.sort_values(["task", "dataset", "variant", "model", "sampler", "seed"],
                             kind="stable", key=_natural_key)


def _natural_key(column: pd.Series) -> pd.Series:
    """Sort "ratio=4" before "ratio=16": digit runs compare as numbers."""
    if column.dtype != object and column.dtype != "string":
        return column
    return column.astype(str).str.replace(r"\d+", lambda m: m.group().zfill(12), regex=True)


def _metric_label(metric: str, part: pd.DataFrame) -> str:
    arrow = "↓" if part["direction"].iloc[0] == "lower" else "↑"
    unit = part["unit"].iloc[0]
    return f"{metric} ({unit}) {arrow}" if unit else f"{metric} {arrow}"


def task_table(long: pd.DataFrame, layout: TableLayout) -> pd.DataFrame:
    """The paper-style pivot of one task's records: mean (± std) over seeds."""
    frame = _displayable(long)
    if layout.metrics is not None:
        frame = frame[frame["metric"].isin(layout.metrics)]
    if frame.empty:
        return pd.DataFrame()
    labels = {m: _metric_label(m, part) for m, part in frame.groupby("metric", sort=False)}
    frame = frame.assign(metric=frame["metric"].map(labels))
    keys = [*layout.rows, *layout.columns]
    cells = frame.groupby(keys, sort=False)["value"].apply(_mean_spread)
    table = cells.unstack(list(layout.columns)) if layout.columns else cells.to_frame("value")
    if isinstance(table.columns, pd.MultiIndex):
        table.columns = [" / ".join(map(str, c)) for c in table.columns]
    return table.fillna("-").reset_index()


def summary_frame(long: pd.DataFrame) -> pd.DataFrame:
    """Mean (± std over seeds) of each metric per cell group, with NFE and wall time."""
    if long.empty:
        return pd.DataFrame(columns=CELL_COLUMNS)
    frame = _displayable(long)
    summary = pd.DataFrame(index=frame.groupby(CELL_COLUMNS, sort=False).size().index)
    for metric, part in frame.groupby("metric", sort=False):
        label = _metric_label(metric, part)
        summary[label] = part.groupby(CELL_COLUMNS, sort=False)["value"].apply(_mean_spread)
    per_cell = frame.drop_duplicates("key").groupby(CELL_COLUMNS, sort=False)
    summary["NFE"] = per_cell["nfe"].mean().round().astype(int)
    summary["seeds"] = per_cell["seed"].nunique()
    summary["wall s"] = per_cell["wall_time_s"].mean().map(lambda v: f"{v:.2f}")
    return summary.fillna("-").reset_index()


def problems_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Skipped and failed cells with their reasons."""
    rows = [{**{c: record.get(c) for c in CELL_COLUMNS}, "seed": record["seed"],
             "status": record["status"], "reason": record.get("reason")}
            for record in records if record["status"] != "ok"]
    return pd.DataFrame(rows, columns=[*CELL_COLUMNS, "seed", "status", "reason"])


def markdown(frame: pd.DataFrame) -> str:
    return tabulate(frame, headers="keys", tablefmt="github", showindex=False, missingval="-")


def render(records: list[dict[str, Any]], csv_path: Path | None = None,
           layouts: dict[str, TableLayout] | None = None) -> str:
    """The markdown report of a run: the tasks' paper-style tables (from `layouts`,
    by task name), the summary and the problems. Writes the long CSV to `csv_path`."""
    long = long_frame(records)
    if csv_path is not None:
        long.to_csv(csv_path, index=False)
    parts = []
    for task, part in long.groupby("task", sort=True):
        layout = (layouts or {}).get(task)
        table = task_table(part, layout) if layout else pd.DataFrame()
        if not table.empty:
            parts.append(f"### {task}\n\n" + markdown(table))
    summary = summary_frame(long)
    heading = "### all cells\n\n" if parts else ""
    parts.append(heading + markdown(summary) if not summary.empty else "(no finished cells)")
    problems = problems_frame(records)
    if not problems.empty:
        parts.append("Skipped or failed cells:\n\n" + markdown(problems))
    return "\n\n".join(parts)
