"""From result records to a `Report`: the paper-style tables, a summary, the problems.

Each task with a `TableLayout` gets its paper-style table (e.g. super-resolution
dB with ratios as rows and dataset x sampler as columns). A table cell is an
`Entry`: the mean with the half-width of its 95% bootstrap interval (over
examples, seeds pooled; see `arbench.results.statistics`), and whether it is the best
among the samplers it competes with: bold only when a test over the same
examples says it beats the runner-up at the report's level (`alpha`), else the
entries tied with the top are marked as tied. Reporter plugins
(markdown, LaTeX, CSV, parquet, HTML) only format a `Report`; the markdown
form lives here because every `arbench run` prints it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from arbench.plugin.specs import TableLayout, TaskSpec
from arbench.report.claims import agreement_tables
from arbench.report.entries import Entry, PaperTable, interval_text
from arbench.report.frames import CELL_COLUMNS, long_frame, problems_frame
from arbench.results.artifacts import SAMPLES_FILE, DamagedArtifact, Samples, read_samples
from arbench.results.certificate import claim_labels
from arbench.results.compare import MinEffects
from arbench.results.identity import canonical, variant_label
from arbench.results.record import Record
from arbench.results.speed import COST_METRICS
from arbench.results.statistics import Measured, difference, estimate
from arbench.results.store import atomic_write

COST_ROWS = ("dataset", "model", "sampler", "exactness", "variant", "budget", "nfe")


ALPHA = 0.05  # tables' significance level unless the caller (a suite) sets one
INTERVAL_NOTE = ("mean ± half-width of the 95% percentile bootstrap interval over examples "
                 "(each averaged over seeds; generated samples pooled; FID and IS: over "
                 "resampled sample sets); **bold**: better "
                 "than the runner-up by a paired test (Wilcoxon signed-rank on the same "
                 "examples; Mann-Whitney U for generated samples; bootstrap replicates for FID "
                 "and IS) at p < {alpha:g}; *italic*: tied with the best, no significant "
                 "difference.")


COST_NOTE = ("exactness: the sampler's claim, exact (ancestral's samples for the seed), "
             "distribution (the model's distribution) or approximate, with the verdict of "
             "`arbench certify` on the sampler code that made the record: certified (p of "
             "the model it fitted worst), FAILED, or not certified (no certificate of that "
             "code in the certificates folder beside the run folders); "
             "NFE: the target calls each example took part in, mean over examples, counted "
             "by arbench; positions: target positions evaluated per example (a full pass "
             "all, a cache step 1, a window its width); flops: floating-point operations "
             "per example of the scored call, counted at the ATen level (millions); sampler_s: the "
             "sampler's own seconds (after a warm-up; no loading, no metrics), mean ± "
             "half-width of the 95% bootstrap interval over repeated timings; speedup: the "
             "task's reference sampler's time over this one's on the same inputs, timed in "
             "turn with it call by call, mean of the rounds' ratios with a bootstrap "
             "interval over rounds (records made before: the reference's record of the "
             "same data and seed, bootstrap of the ratio of means); draft_nfe, "
             "acceptance, mat: a "
             "draft-and-verify sampler's draft calls per example and values per target "
             "call (Spec-Bench's MAT), both counted by arbench, and the share of draft "
             "values kept, as the sampler reports it; mean over seeds; draft_steps, "
             "call_steps (batch 1, CPU): a drafted value's and a target call's seconds in "
             "the reference's steps (its seconds per call), clocked in the timed calls; "
             "bound: the speed-up those calls alone allow at the acceptance a, "
             "(1 - a^(k+1)) / ((1 - a)(k draft_steps + call_steps)); bound_share: the "
             "speed-up over it. Timings measure this machine: never gated, never marked "
             "best.")


@dataclass
class Report:
    """Everything reporters format: tables, the tidy long frame, and where runs live."""

    records: list[Record]
    tables: list[PaperTable]
    long: pd.DataFrame
    summary: pd.DataFrame
    problems: pd.DataFrame
    run_dirs: list[Path] = field(default_factory=list)
    damaged: dict[Path, str] = field(default_factory=dict)  # artifacts reporters could not read
    _samples: dict[str, Samples | None] = field(default_factory=dict, repr=False)

    def saved_samples(self, record: Record) -> Samples | None:
        """The samples `record`'s cell saved in one of the run folders; None when none did,
        or when the file is damaged (then listed in `damaged`, so the report goes on)."""
        if record.key not in self._samples:
            paths = [run_dir / "artifacts" / record.key / SAMPLES_FILE
                     for run_dir in self.run_dirs]
            path = next((path for path in paths if path.is_file()), None)
            self._samples[record.key] = None
            if path is not None:
                try:
                    self._samples[record.key] = read_samples(path)
                except DamagedArtifact as error:
                    self.damaged[path] = str(error)
        return self._samples[record.key]

    def tidy(self) -> pd.DataFrame:
        """The long frame as CSV and parquet files hold it: without its `Measured` objects,
        parameters and swept values as canonical JSON."""
        return self.long.drop(columns="measured").assign(
            params=self.long["params"].map(canonical), swept=self.long["swept"].map(canonical))

    def write_csv(self, path: Path) -> Path:
        """The long table as CSV at `path`, written whole or not at all."""
        return atomic_write(path, lambda target: self.tidy().to_csv(target, index=False))

    @property
    def title(self) -> str:
        """The report's title: its run folders' names."""
        return " + ".join(path.name for path in self.run_dirs) or "arbench report"


def _estimate_text(group: pd.DataFrame) -> str:
    found = estimate(list(group.sort_values("seed")["measured"]))
    return interval_text(found.mean, found.low, found.high)


def _displayable(long: pd.DataFrame) -> pd.DataFrame:
    """Fill the fields that may be empty with printable values, in a stable row order."""
    frame = long.assign(model=long["model"].fillna("-"), variant=long["variant"].fillna(""),
                        budget=long["budget"].map(lambda b: "default" if pd.isna(b) else int(b)))
    frame["hidden"] = _hidden_differences(frame)
    frame["variant"] = _variant_text(frame, ())
    frame["setting"] = [  # what sets up the task, not a variant of the entry's own plugins
        variant_label({p: v for p, v in row["swept"].items()
                       if p not in (row["sampler"], row["model"])}, row["task"])
        for row in frame[["swept", "task", "sampler", "model"]].to_dict("records")]
    return frame.sort_values(["task", "dataset", "variant", "model", "sampler", "nfe", "budget",
                              "seed"],
                             kind="stable", key=_natural_key)


def _hidden_differences(frame: pd.DataFrame) -> pd.Series:
    """For cells whose fields and seed coincide (say two runs at other ``n_samples``), the
    parameters that tell them apart, so they are never averaged as if they were seeds;
    the key's start where no parameter differs (other checkpoints or versions)."""
    labels: dict[Any, str] = dict.fromkeys(frame.index, "")
    twins = frame.duplicated([*CELL_COLUMNS, "seed", "metric"], keep=False)
    for _, group in frame[twins].groupby([*CELL_COLUMNS, "seed", "metric"], sort=False):
        own = {index: {f"{plugin}.{key}={value}" for plugin, values in params.items()
                       for key, value in values.items()}
               for index, params in group["params"].items()}
        shared = set.intersection(*own.values())
        keys = group["key"].to_dict()
        for index, items in own.items():
            labels[index] = ",".join(sorted(items - shared)) or f"#{str(keys[index])[:6]}"
    return pd.Series(labels, index=frame.index, dtype=str)


def _variant_text(frame: pd.DataFrame, beside: Iterable[str]) -> list[str]:
    """Each row's variant label (its swept parameters, then the parameters that alone
    tell it from a twin), without the prefix of the plugins in the `beside` fields."""
    fields = list(beside)
    labels = []
    for row in frame[["swept", "task", "hidden", *fields]].to_dict("records"):
        label = variant_label(row["swept"], row["task"], [row[f] for f in fields])
        labels.append(f"{label} {row['hidden']}".strip())
    return labels


def _natural_key(column: pd.Series) -> pd.Series:
    """Sort "ratio=4" before "ratio=16": digit runs compare as numbers."""
    if column.dtype != object and column.dtype != "string":
        return column
    return column.astype(str).str.replace(r"\d+", lambda m: m.group().zfill(12), regex=True)


def _metric_label(metric: str, part: pd.DataFrame) -> str:
    arrow = "↓" if part["direction"].iloc[0] == "lower" else "↑"
    unit = part["unit"].iloc[0]
    return f"{metric} ({unit}) {arrow}" if unit else f"{metric} {arrow}"


def _entries(frame: pd.DataFrame, keys: list[str], layout: TableLayout,
             alpha: float, min_effects: MinEffects | None = None) -> pd.Series:
    """Entry per `keys` group, marking the best among entries that differ only in the
    layout's `compete` fields and in variants of a competitor (same setting): bold when
    it beats the runner-up significantly, else every entry not distinguishable from the
    top is tied. The layout's `references` are never marked."""
    reference = frame["model"].isin(layout.references) | frame["sampler"].isin(layout.references)
    groups = frame.assign(reference=reference).groupby([*keys, "setting"], sort=False)
    measured = {index: list(group.sort_values("seed")["measured"]) for index, group in groups}
    estimates = {index: estimate(values) for index, values in measured.items()}
    stats = groups.agg(higher=("direction", lambda d: d.iloc[0] == "higher"),
                       reference=("reference", "any"), name=("metric_name", "first"))
    effects = min_effects or MinEffects()
    stats["mean"] = [estimates[index].mean for index in stats.index]
    best = pd.Series(False, index=stats.index)
    tied = pd.Series(False, index=stats.index)
    rivals = [k for k in keys if k not in layout.compete and k != "variant"] + ["setting"]
    contested = ~stats["reference"] & ~stats["name"].isin(COST_METRICS)  # cost: no marks
    for _, group in stats[contested].groupby(level=rivals, sort=False):
        if len(group) < 2:
            continue
        order = group["mean"].sort_values(ascending=not group["higher"].iloc[0]).index
        top = order[0]
        effect = effects.for_metric(str(group["name"].iloc[0]))
        beats = [_beats(measured[top], measured[other], alpha)
                 and abs(group["mean"][top] - group["mean"][other])
                 > effect.allowed(group["mean"][other]) for other in order[1:]]
        if None in beats:  # nothing recorded to test with (a timing, a plain float): no mark
            continue
        ties = [other for other, won in zip(order[1:], beats, strict=True) if not won]
        if ties:
            tied[[top, *ties]] = True
        else:
            best[top] = True
    entries = pd.Series([
        Entry(estimates[index].mean, estimates[index].half_width, estimates[index].n,
              bool(best[index]), bool(tied[index]), estimates[index].low,
              estimates[index].high)
        for index in stats.index
    ], index=stats.index, dtype=object)
    return entries.droplevel("setting")


def _beats(top: list[Measured], other: list[Measured], alpha: float) -> bool | None:
    """Whether `top` differs from `other` at level `alpha`; None when untestable. A win also
    needs a difference above the metric's minimum effect (float noise by default: the
    same `arbench.results.compare.FLOAT_NOISE` the regression gate uses)."""
    p = difference(other, top).p
    return None if p is None else p < alpha


def _axes(frame: pd.DataFrame, layout: TableLayout) -> tuple[list[str], list[str]]:
    """The layout's rows and columns, plus each cell field that still differs between
    records the layout would put in one entry (placed beside `sampler`): different cells
    are never averaged as if they were seeds, e.g. two PnF budgets in a table laid out
    by ratio and sampler."""
    rows, columns = list(layout.rows), list(layout.columns)
    for name in ("dataset", "variant", "model", "sampler", "budget"):
        keys = [*rows, *columns, "metric"]
        if name not in keys and frame.groupby(keys)[name].nunique().max() > 1:
            (columns if "sampler" in columns else rows).append(name)
    return rows, columns


def _column_label(fields: list[str], values: tuple[Any, ...]) -> str:
    """"NFE 64" and "budget 4" (a bare number would not say what it counts), else the values
    joined: "piano / pnf / 400" (a budget beside other fields reads as one); a variant of a
    plugin already named drops that name ("made-mol / mixtures=6", see `task_table`)."""
    if fields == ["budget"]:
        return f"budget {values[0]}"
    shown = dict(zip(fields, values, strict=True))
    return " / ".join(f"NFE {v}" if name == "nfe" else str(v)
                      for name, v in shown.items() if v != "")


def task_table(long: pd.DataFrame, layout: TableLayout, alpha: float = ALPHA,
               min_effects: MinEffects | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The paper-style pivot of one task's records: row fields, then one Entry per column.
    Returns the table and its row fields."""
    frame = _displayable(long)
    frame = frame[frame["metric"].isin(layout.metrics or frame["metric"].unique())]
    if frame.empty:
        return pd.DataFrame(), []
    labels = {m: _metric_label(str(m), part) for m, part in frame.groupby("metric", sort=False)}
    frame = frame.assign(metric=frame["metric"].map(labels), metric_name=frame["metric"])
    rows, columns = _axes(frame, layout)
    if "variant" in columns:  # "made-mol / mixtures=6": no prefix for a plugin named beside
        frame = frame.assign(variant=_variant_text(
            frame, [name for name in ("model", "sampler") if name in columns]))
    if "metric" not in [*rows, *columns] and len(labels) > 1:
        columns.append("metric")  # never average two metrics into one number
    keys = [*rows, *columns]
    entries = _entries(frame, keys if "metric" in keys else [*keys, "metric"], layout, alpha,
                       min_effects)
    if "metric" not in keys:
        entries = entries.droplevel("metric")
    table = entries.unstack(columns) if columns else entries.to_frame("value")
    if columns in (["nfe"], ["budget"]):
        table = table[sorted(table.columns, key=lambda v: (v == "default", v))]
    if columns:
        values = table.columns if isinstance(table.columns, pd.MultiIndex) else [
            (value,) for value in table.columns]
        table.columns = [_column_label(columns, value) for value in values]
        # references (a true density) close the table: a floor, not a competitor
        is_reference = [bool(set(value) & set(layout.references)) for value in values]
        table = table[[c for c, ref in zip(table.columns, is_reference, strict=True) if not ref]
                      + [c for c, ref in zip(table.columns, is_reference, strict=True) if ref]]
    table = table.astype(object).where(table.notna(), None)
    return table.reset_index(), rows


def summary_frame(long: pd.DataFrame) -> pd.DataFrame:
    """Mean ± 95% interval half-width of each metric per cell group, with NFE and wall time."""
    if long.empty:
        return pd.DataFrame(columns=CELL_COLUMNS)
    frame = _displayable(long)
    summary = pd.DataFrame(index=frame.groupby(CELL_COLUMNS, sort=False).size().index)
    for metric, part in frame.groupby("metric", sort=False):
        label = _metric_label(str(metric), part)
        summary[label] = part.groupby(CELL_COLUMNS, sort=False)[["seed", "measured"]].apply(
            _estimate_text)
    per_cell = frame.drop_duplicates("key").groupby(CELL_COLUMNS, sort=False)
    summary["NFE"] = per_cell["nfe"].mean().round().astype(int)
    summary["seeds"] = per_cell["seed"].nunique()
    summary["wall s"] = per_cell["wall_time_s"].mean().map(
        lambda v: "-" if pd.isna(v) else f"{v:.2f}")
    return summary.fillna("-").reset_index()


@dataclass(frozen=True)
class TaskViews:
    """How each task wants its results shown: its paper table's layout (by task name, and
    by ``task:modality`` for a modality with a table of its own) and its reference
    sampler (the cost table's speed-ups, the agreement tables)."""

    layouts: Mapping[str, TableLayout] = field(default_factory=dict)
    references: Mapping[str, str | None] = field(default_factory=dict)

    @classmethod
    def of(cls, tasks: Iterable[TaskSpec]) -> TaskViews:
        """The views the task specs declare."""
        layouts: dict[str, TableLayout] = {}
        references: dict[str, str | None] = {}
        for spec in tasks:
            if spec.table:
                layouts[spec.name] = spec.table
            layouts |= {f"{spec.name}:{modality}": layout
                        for modality, layout in spec.modality_tables.items()}
            references[spec.name] = spec.reference
        return cls(layouts, references)


def build_report(records: list[Record], views: TaskViews | None = None,
                 run_dirs: Iterable[Path] = (), alpha: float = ALPHA,
                 min_effects: MinEffects | None = None) -> Report:
    """Assemble the tables of `records` as the tasks' `views` lay them out; an entry is
    called the best at level `alpha` and by more than its metric's minimum effect (a
    suite's `min_effects`; float noise when None)."""
    views = views or TaskViews()
    layouts, references = views.layouts, views.references
    run_dirs = list(run_dirs)
    claims = claim_labels(records, {Path(run_dir).parent for run_dir in run_dirs})
    long = long_frame(records, references, claims)
    # A modality with a layout of its own gets its own table, titled "task (modality)".
    table_of = pd.Series([f"{task}:{modality}" if f"{task}:{modality}" in layouts else task
                          for task, modality in zip(long["task"], long["modality"], strict=True)],
                         index=long.index, dtype=object)
    tables = []
    timing = long["metric"].isin(COST_METRICS)
    for name, part in long[~timing].groupby(table_of[~timing], sort=True):
        layout = layouts.get(name)
        frame, rows = task_table(part, layout, alpha, min_effects) if layout else (
            pd.DataFrame(), [])
        if not frame.empty:
            task, _, modality = str(name).partition(":")
            tables.append(PaperTable(f"{task} ({modality})" if modality else task, frame, rows,
                                     INTERVAL_NOTE.format(alpha=alpha)))
    cost = TableLayout(rows=COST_ROWS, metrics=COST_METRICS, compete=())
    for name, part in long[timing].groupby("task", sort=True):
        frame, rows = task_table(part, cost, alpha)
        tables.append(PaperTable(f"{name!s}: cost", frame, rows, COST_NOTE))
    tables += agreement_tables(records, references, alpha, min_effects, claims)
    return Report(records=records, tables=tables, long=long,
                  summary=summary_frame(long), problems=problems_frame(records),
                  run_dirs=run_dirs)


def markdown(frame: pd.DataFrame) -> str:
    """A github-style table; numbers keep the digits they were formatted with."""
    return tabulate(frame.values.tolist(), headers=list(frame.columns), tablefmt="github",
                    missingval="-",
                    disable_numparse=True)


def markdown_report(report: Report) -> str:
    """The tasks' tables (best entries in bold), every cell, then skipped and failed cells."""
    parts = [f"### {table.task}\n\n" + markdown(table.formatted(Entry.text))
             for table in report.tables]
    parts += sorted({table.note for table in report.tables})
    heading = "### all cells\n\n" if parts else ""
    summary = report.summary
    parts.append(heading + markdown(summary) if not summary.empty else "(no finished cells)")
    if not report.problems.empty:
        parts.append("Skipped or failed cells:\n\n" + markdown(report.problems))
    return "\n\n".join(parts)
