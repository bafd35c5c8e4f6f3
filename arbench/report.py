"""Tables from result records: a long frame for analysis, a summary for people.

The summary has one row per task/dataset/model/sampler/budget, the mean over
seeds of every metric (with a +- standard deviation when there are several
seeds), NFE and wall time. Skipped and failed cells are listed with reasons.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

CELL_COLUMNS = ["task", "dataset", "model", "sampler", "budget"]


def long_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per (ok cell, metric): the tidy form that pandas and CSV users want."""
    rows = []
    for record in records:
        if record["status"] != "ok":
            continue
        for metric, entry in record["metrics"].items():
            rows.append({
                **{column: record[column] for column in CELL_COLUMNS},
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


def summary_frame(long: pd.DataFrame) -> pd.DataFrame:
    """Mean (± std over seeds) of each metric per cell group, with NFE and wall time."""
    if long.empty:
        return pd.DataFrame(columns=CELL_COLUMNS)
    frame = long.assign(model=long["model"].fillna("-"),
                        budget=long["budget"].map(lambda b: "default" if pd.isna(b) else int(b)))
    frame = frame.sort_values(["task", "dataset", "model", "sampler", "seed"], kind="stable")
    summary = pd.DataFrame(index=frame.groupby(CELL_COLUMNS, sort=False).size().index)
    for metric, part in frame.groupby("metric", sort=False):
        arrow = "↓" if part["direction"].iloc[0] == "lower" else "↑"
        unit = part["unit"].iloc[0]
        label = f"{metric} ({unit}) {arrow}" if unit else f"{metric} {arrow}"
        summary[label] = part.groupby(CELL_COLUMNS, sort=False)["value"].apply(_mean_spread)
    per_cell = frame.drop_duplicates("key").groupby(CELL_COLUMNS, sort=False)
    summary["NFE"] = per_cell["nfe"].mean().round().astype(int)
    summary["seeds"] = per_cell["seed"].nunique()
    summary["wall s"] = per_cell["wall_time_s"].mean().map(lambda v: f"{v:.2f}")
    return summary.fillna("-").reset_index()


def problems_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Skipped and failed cells with their reasons."""
    rows = [{**{c: record[c] for c in CELL_COLUMNS}, "seed": record["seed"],
             "status": record["status"], "reason": record.get("reason")}
            for record in records if record["status"] != "ok"]
    return pd.DataFrame(rows, columns=[*CELL_COLUMNS, "seed", "status", "reason"])


def markdown(frame: pd.DataFrame) -> str:
    return tabulate(frame, headers="keys", tablefmt="github", showindex=False, missingval="-")


def render(records: list[dict[str, Any]], csv_path: Path | None = None) -> str:
    """The markdown report of a run; also writes the long CSV when `csv_path` is given."""
    long = long_frame(records)
    if csv_path is not None:
        long.to_csv(csv_path, index=False)
    parts = []
    summary = summary_frame(long)
    parts.append(markdown(summary) if not summary.empty else "(no finished cells)")
    problems = problems_frame(records)
    if not problems.empty:
        parts.append("Skipped or failed cells:\n\n" + markdown(problems))
    return "\n\n".join(parts)
