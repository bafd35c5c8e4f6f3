"""The "against ancestral" tables: each claim of the model's distribution beside the
reference sampler's metrics on the same model, data, settings and seeds
(`arbench.results.agreement` tests them)."""

from __future__ import annotations

import pandas as pd

from arbench.report.entries import Entry, PaperTable
from arbench.results.agreement import REFERENCE, agreements
from arbench.results.compare import MinEffects
from arbench.results.identity import variant_label
from arbench.results.record import Record

AGREEMENT_NOTE = ("against ancestral: a sampler that claims the model's distribution, each "
                  "metric minus ancestral sampling's on the same model, data and seeds, "
                  "with its 95% interval; *italic*: no difference (the claim holds on this "
                  "metric); plain: a paired test finds one above the metric's minimum "
                  "effect, at family-wise level {alpha:g} over the table (Holm).")


def agreement_tables(records: list[Record], alpha: float,
                     min_effects: MinEffects | None) -> list[PaperTable]:
    """Per task, the claiming samplers' metrics minus ancestral's:
    tied (italic) where no test finds a difference, plain where one does."""
    rows = [{"task": found.record.task, "dataset": found.record.dataset,
             "model": found.record.model or "-", "sampler": found.record.sampler,
             "exactness": found.record.exactness,
             "variant": variant_label(found.record.swept, found.record.task),
             "budget": "default" if found.record.budget is None else found.record.budget,
             "metric": f"{found.metric} vs {REFERENCE}",
             "entry": Entry(found.difference.mean, None, found.difference.n,
                            tied=not found.differs, low=found.difference.low,
                            high=found.difference.high)}
            for found in agreements(records, alpha, min_effects)]
    if not rows:
        return []
    fields = ["dataset", "model", "sampler", "exactness", "variant", "budget"]
    tables = []
    for task, part in pd.DataFrame(rows).groupby("task", sort=True):
        frame = part.pivot_table(index=fields, columns="metric", values="entry",
                                 aggfunc="first", sort=True)
        frame = frame.astype(object).where(frame.notna(), None).reset_index()
        frame.columns = [str(c) for c in frame.columns]
        tables.append(PaperTable(f"{task!s}: against {REFERENCE}", frame, fields,
                                 AGREEMENT_NOTE.format(alpha=alpha)))
    return tables
