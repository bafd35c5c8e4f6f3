"""Samplers that claim the model's distribution, checked on the real models of a run.

`arbench certify` certifies a claim against models small enough to enumerate;
on a real model the check is what a reader of the tables needs: every metric of a
sampler that claims ``exact`` or ``distribution`` (`arbench.plugin.contracts.Exactness`) beside
the task's reference sampler's (where that one claims exact samples: ancestral sampling)
on the same model, data, settings and seeds, tested by the paired
machinery (`arbench.results.statistics.difference`: Wilcoxon on the same examples, Mann-Whitney
U for generated samples, bootstrap replicates for FID and IS). A claim agrees when no
metric differs by more than its minimum effect, with Holm's correction over every test
of the report at family-wise level `alpha`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from arbench.results.compare import MinEffects
from arbench.results.record import Record
from arbench.results.statistics import Difference, Measured, difference

CLAIMS = ("exact", "distribution")
EXACT = "exact"  # what a reference must claim for the others' claims to be set against it


@dataclass(frozen=True)
class Agreement:
    """One metric of one claiming entry against the reference sampler's: the difference
    (this entry minus the reference, seeds pooled) and whether it is a finding."""

    record: Record  # the first seed's record: the entry's fields
    reference: str  # the reference sampler
    metric: str
    difference: Difference
    differs: bool
    p_holm: float | None = None  # the test's p adjusted for every test of the table (Holm)


def agreements(records: Iterable[Record], references: Mapping[str, str | None], alpha: float,
               min_effects: MinEffects | None = None) -> list[Agreement]:
    """Every metric of every claiming entry that has a twin on the same model run by its
    task's reference sampler (`references`: task -> sampler), where that claims exactness."""
    ok = [r for r in records if r.status == "ok"]
    twins = {_twin(r): r for r in ok if r.identity.sampler == references.get(r.identity.task)
             and r.configuration.exactness == EXACT and not r.identity.swept.get(
                 r.identity.sampler)}
    pairs: dict[str, list[tuple[Record, Record]]] = {}
    for record in ok:
        reference = twins.get(_twin(record))
        if record.configuration.exactness in CLAIMS and reference and (
                record.identity.sampler != reference.identity.sampler):
            pairs.setdefault(record.entry(), []).append((record, reference))
    effects = min_effects or MinEffects()
    tested = []
    for matched in pairs.values():
        matched.sort(key=lambda pair: pair[0].identity.seed)
        first = matched[0][0]
        for metric in first.metrics:
            if not all(metric in ref.metrics and metric in own.metrics for own, ref in matched):
                continue
            own = [o.metrics[metric].measured() for o, _ in matched]
            theirs = [r.metrics[metric].measured() for _, r in matched]
            above = effects.for_metric(metric).allowed(_mean(theirs))
            tested.append((first, matched[0][1].identity.sampler, metric, difference(theirs, own),
                           above))
    p_values = [result.p for *_, result, _ in tested]
    rejected, adjusted = holm(p_values, alpha), holm_adjusted(p_values)
    return [Agreement(first, reference, metric, result, bool(reject and abs(result.mean) > above),
                      p_holm)
            for (first, reference, metric, result, above), reject, p_holm
            in zip(tested, rejected, adjusted, strict=True)]


def holm(p_values: list[float | None], alpha: float) -> list[bool]:
    """Holm's step-down test of every claim at once: which hypotheses of no difference are
    rejected with a family-wise error of `alpha` (a table of forty metrics would show two
    false differences at 0.05 each). None: no test, never rejected."""
    order = sorted((p, index) for index, p in enumerate(p_values) if p is not None)
    rejected = [False] * len(p_values)
    for rank, (p, index) in enumerate(order):
        if p >= alpha / (len(order) - rank):
            break
        rejected[index] = True
    return rejected


def holm_adjusted(p_values: list[float | None]) -> list[float | None]:
    """Holm's adjusted p-values: a hypothesis is rejected at family-wise level alpha exactly
    when its adjusted p is below alpha (`holm`). None: no test."""
    order = sorted((p, index) for index, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[index] = running
    return adjusted


def _twin(record: Record) -> tuple[str, str]:
    """Where an entry's reference runs: the same data, settings, seed and model."""
    return record.setting(), record.model_setup()


def _mean(group: list[Measured]) -> float:
    return sum(m.value for m in group) / len(group)
