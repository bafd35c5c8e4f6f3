"""The "against REFERENCE" tables: each claim of the model's distribution beside the
metrics of the task's reference sampler (ancestral sampling, where it is the task's) on
the same model, data, settings and seeds (`arbench.results.agreement` tests them)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from arbench.report.entries import Entry, PaperTable
from arbench.results.agreement import agreements
from arbench.results.compare import MinEffects
from arbench.results.record import Record

AGREEMENT_NOTE = ("against {reference}: a sampler that claims the model's distribution, each "
                  "metric minus {reference} sampling's on the same model, data and seeds, "
                  "with its 95% interval, the test's p and its Holm-adjusted p over every "
                  "test of the table; *italic*: no difference (the claim holds on this "
                  "metric); plain: a paired test finds one above the metric's minimum "
                  "effect, at family-wise level {alpha:g} over the table (Holm: adjusted p "
                  "below {alpha:g}).")


def agreement_tables(records: list[Record], references: Mapping[str, str | None], alpha: float,
                     min_effects: MinEffects | None, claims: Mapping[str, str] | None = None
                     ) -> list[PaperTable]:
    """Per task, the claiming samplers' metrics minus its reference sampler's (`references`:
    task -> sampler): tied (italic) where no test finds a difference, plain where one does.
    `claims`: each record's claim as shown, by key (default: as declared)."""
    rows = [{"task": found.record.identity.task, "dataset": found.record.identity.dataset,
             "model": found.record.identity.model or "-",
             "sampler": found.record.identity.sampler,
             "exactness": (claims or {}).get(found.record.key,
                                             found.record.configuration.exactness),
             "variant": found.record.identity.variant,
             "budget": "default" if found.record.identity.budget is None
             else found.record.identity.budget,
             "reference": found.reference, "metric": f"{found.metric} vs {found.reference}",
             "entry": Entry(found.difference.mean, None, found.difference.n,
                            tied=not found.differs, low=found.difference.low,
                            high=found.difference.high, p=found.difference.p,
                            p_holm=found.p_holm)}
            for found in agreements(records, references, alpha, min_effects)]
    if not rows:
        return []
    fields = ["dataset", "model", "sampler", "exactness", "variant", "budget"]
    tables = []
    for (task, reference), part in pd.DataFrame(rows).groupby(["task", "reference"], sort=True):
        frame = part.pivot_table(index=fields, columns="metric", values="entry",
                                 aggfunc="first", sort=True)
        frame = frame.astype(object).where(frame.notna(), None).reset_index()
        frame.columns = [str(c) for c in frame.columns]
        tables.append(PaperTable(f"{task!s}: against {reference!s}", frame, fields,
                                 AGREEMENT_NOTE.format(alpha=alpha, reference=reference)))
    return tables
