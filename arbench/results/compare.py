"""`arbench compare`: did CURRENT get worse than BASELINE, by more than noise?

Cells are matched by key, the hash of their configuration (names, budget, seed,
parameters, checkpoint), never by code or version: a pull request that changes
a sampler is compared with the baseline of the same configuration.

A metric has regressed, as asv and lm-eval decide, when the change is both
(a) larger than the suite's minimum effect that matters for that metric, in its
own direction, and (b) significant: p < alpha on a paired test over the examples
both records scored (Wilcoxon signed-rank), a Mann-Whitney U test for values of
generated samples, or the bootstrap replicates of a set-level metric (FID).
A metric recorded without uncertainty is judged by (a) alone. More network calls
(NFE) at the same configuration is a regression too. Minimum effects are
absolute, relative, or both (the larger wins), looked up by ``DATASET:METRIC``,
then ``DATASET:BASE`` (``voice:si_sdr_db`` covers ``si_sdr_db/piano`` on voice),
then ``METRIC``, ``BASE`` and ``default``. docs/regressions.md states the rule.

Exit codes, distinct so CI can tell a regression from a broken run:
0 nothing regressed, 1 a metric or the NFE regressed, or a cell that passed now
fails, 2 could not compare (unreadable files, baseline cells missing from CURRENT).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tabulate import tabulate

from arbench.errors import CompareError
from arbench.results.record import Record
from arbench.results.statistics import Difference, difference

NO_REGRESSION, REGRESSION, CANNOT_COMPARE = 0, 1, 2


ALPHA = 0.01  # significance level when the suite sets none


@dataclass(frozen=True)
class MinEffect:
    """The smallest change that matters: max(abs, rel * |baseline|), in the metric's unit."""

    abs: float = 0.0
    rel: float = 0.0

    def allowed(self, baseline: float) -> float:
        """The largest change that does not matter at `baseline`, in the metric's unit."""
        return max(self.abs, self.rel * abs(baseline))

    def __str__(self) -> str:
        parts = [f"±{self.abs:g}"] if self.abs else []
        if self.rel:
            parts.append(f"±{100 * self.rel:g}%")
        return " or ".join(parts) or "exact"


def parse_min_effect(value: Any, where: str = "min_effect") -> MinEffect:
    """``0.5`` (absolute), ``"2%"`` (relative) or ``{abs: 0.5, rel: 0.02}``."""
    if isinstance(value, dict) and set(value) - {"abs", "rel"}:
        unknown = sorted(set(value) - {"abs", "rel"})
        raise CompareError(f"{where}: unknown key(s) {unknown}; use abs and rel")
    try:
        if isinstance(value, dict):
            min_effect = MinEffect(float(value.get("abs", 0)), float(value.get("rel", 0)))
        elif isinstance(value, str) and value.strip().endswith("%"):
            min_effect = MinEffect(rel=float(value.strip()[:-1]) / 100)
        else:
            min_effect = MinEffect(abs=float(value))
    except (TypeError, ValueError):
        raise CompareError(f"{where}: '{value}' is not a minimum effect; write 0.5, 2% "
                           "or {abs: 0.5, rel: 0.02}") from None
    if min_effect.abs < 0 or min_effect.rel < 0:
        raise CompareError(f"{where}: '{value}' is negative; minimum effects are >= 0")
    return min_effect


FLOAT_NOISE = MinEffect(abs=1e-9, rel=1e-6)


@dataclass
class MinEffects:
    """Per-metric minimum effects and a `default` (when unset: float noise only)."""

    by_metric: dict[str, MinEffect] = field(default_factory=dict)
    default: MinEffect | None = None

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any] | None, where: str = "min_effects"
                     ) -> MinEffects:
        """Minimum effects from a suite's or the flags' mapping of metric names (or
        'default') to values; a CompareError naming a bad one."""
        if not isinstance(mapping or {}, dict):
            raise CompareError(f"{where} must map metric names (or 'default') to minimum effects")
        parsed = {name: parse_min_effect(value, f"{where}.{name}")
                  for name, value in (mapping or {}).items()}
        return cls(parsed, parsed.pop("default", None))

    def update(self, other: MinEffects) -> MinEffects:
        """These minimum effects overridden by `other`'s (flags over the suite file)."""
        return MinEffects({**self.by_metric, **other.by_metric}, other.default or self.default)

    def for_metric(self, metric: str, dataset: str = "") -> MinEffect:
        """The minimum effect of `metric` on `dataset`: the most specific name given wins."""
        base = metric.split("/")[0]
        for name in (f"{dataset}:{metric}", f"{dataset}:{base}", metric, base):
            if name in self.by_metric:
                return self.by_metric[name]
        return self.default or FLOAT_NOISE


def parse_alpha(value: Any, where: str = "alpha") -> float:
    """The significance level: a number in (0, 1)."""
    try:
        alpha = float(value)
    except (TypeError, ValueError):
        raise CompareError(f"{where}: '{value}' is not a number; e.g. alpha: 0.01") from None
    if not 0 < alpha < 1:
        raise CompareError(f"{where}: {alpha} must lie between 0 and 1 (e.g. 0.01)")
    return alpha


@dataclass(frozen=True)
class Change:
    """One metric of one cell, in both runs, with the test of their difference."""

    cell: str
    metric: str
    direction: str
    baseline: float
    current: float
    min_effect: MinEffect
    difference: Difference
    alpha: float = ALPHA

    @property
    def worse_by(self) -> float:
        """How much worse CURRENT is (negative: better), in the metric's unit."""
        delta = self.current - self.baseline
        return delta if self.direction == "lower" else -delta

    @property
    def significant(self) -> bool:
        """p < alpha, or True when nothing was recorded to test with."""
        return self.difference.p is None or self.difference.p < self.alpha

    @property
    def verdict(self) -> str:
        """'regressed', 'improved' or 'unchanged': a change counts only when it is larger
        than the minimum effect and significant."""
        allowed = self.min_effect.allowed(self.baseline)
        if abs(self.worse_by) <= allowed or not self.significant:
            return "unchanged"
        return "regressed" if self.worse_by > 0 else "improved"

    def row(self) -> list[str]:
        """The change as a row of the diff's table."""
        d = self.difference
        interval = "-" if d.low is None else f"[{d.low:+.4f}, {d.high:+.4f}]"
        p = "-" if d.p is None else f"{d.p:.2g}"
        return [self.cell, self.metric, f"{self.baseline:.4f}", f"{self.current:.4f}",
                f"{self.current - self.baseline:+.4f}", interval, p, d.test,
                str(self.min_effect)]


@dataclass(frozen=True)
class NfeChange:
    """A cell whose network calls changed at the same configuration."""

    cell: str
    baseline: int
    current: int


@dataclass
class Comparison:
    changes: list[Change] = field(default_factory=list)
    nfe: list[NfeChange] = field(default_factory=list)
    now_failing: list[tuple[str, str]] = field(default_factory=list)  # (cell, reason)
    missing: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    alpha: float = ALPHA
    notes: list[str] = field(default_factory=list)  # said beside the verdict, never changing it

    def of(self, verdict: str) -> list[Change]:
        """The changes with `verdict`."""
        return [change for change in self.changes if change.verdict == verdict]

    @property
    def more_calls(self) -> list[NfeChange]:
        """The cells that now need more network calls: a regression whatever the metrics
        say."""
        return [change for change in self.nfe if change.current > change.baseline]

    @property
    def exit_code(self) -> int:
        """0 nothing regressed, 1 a regression, 2 the runs cannot be compared (missing
        cells, nothing to compare)."""
        if self.missing or not (self.changes or self.now_failing):
            return CANNOT_COMPARE
        regressed = self.of("regressed") or self.now_failing or self.more_calls
        return REGRESSION if regressed else NO_REGRESSION

    def markdown(self) -> str:
        """The diff as markdown, for a terminal or a pull-request comment."""
        outcome = {NO_REGRESSION: "no regression", REGRESSION: "REGRESSION",
                   CANNOT_COMPARE: "could not compare"}[self.exit_code]
        regressed = len(self.of("regressed")) + len(self.now_failing)
        lines = [f"## arbench compare: {outcome}", "",
                 f"{regressed} regressed, {len(self.of('improved'))} improved, "
                 f"{len(self.of('unchanged'))} unchanged metric(s); {len(self.more_calls)} "
                 f"cell(s) with more network calls; {len(self.missing)} missing and "
                 f"{len(self.new)} new cell(s).", "",
                 f"A metric regressed when it got worse by more than its minimum effect and "
                 f"the change is significant (p < {self.alpha:g}); the interval is the 95% "
                 f"bootstrap interval of the difference (current - baseline)."]
        headers = ["cell", "metric", "baseline", "current", "difference", "95% interval",
                   "p", "test", "min effect"]
        for verdict in ("regressed", "improved"):
            rows = [change.row() for change in self.of(verdict)]
            if rows:
                lines += ["", f"### {verdict.capitalize()}", "",
                          tabulate(rows, headers=headers, tablefmt="github",
                                   disable_numparse=True)]
        if self.nfe:
            nfe_rows: list[list[Any]] = [
                [c.cell, c.baseline, c.current,
                 "REGRESSED (more calls)" if c.current > c.baseline else "fewer calls"]
                for c in self.nfe]
            lines += ["", "### NFE (network calls) changed", "",
                      tabulate(nfe_rows, headers=["cell", "baseline NFE", "current NFE", "verdict"],
                               tablefmt="github")]
        if self.now_failing:
            lines += ["", "### Passed in the baseline, not now", "",
                      tabulate(self.now_failing, headers=["cell", "reason"], tablefmt="github")]
        if self.notes:
            lines += ["", "### Notes", "", *[f"- {note}" for note in self.notes]]
        for title, cells in (("Missing from CURRENT (rerun them, or regenerate the baseline "
                              "if their configuration changed on purpose)", self.missing),
                             ("New in CURRENT (not in the baseline)", self.new)):
            if cells:
                lines += ["", f"### {title}", "", *[f"- {cell}" for cell in cells]]
        return "\n".join(lines) + "\n"


def compare_records(baseline: list[Record], current: list[Record],
                    min_effects: MinEffects | None = None, alpha: float = ALPHA) -> Comparison:
    """Match cells by key and judge every metric and the NFE of the cells ok in the baseline."""
    min_effects = min_effects or MinEffects()
    now = {record.key: record for record in current}
    result = Comparison(alpha=alpha)
    for before in baseline:
        label = before.identity.label()
        after = now.pop(before.key, None)
        if before.status != "ok":
            if after is not None and after.status == "ok":
                result.new.append(label + " (now runs)")
            continue
        if after is None:
            result.missing.append(label)
        elif after.status != "ok":
            result.now_failing.append((label, f"{after.status}: {after.reason}"))
        else:
            if before.cost.nfe is not None and after.cost.nfe != before.cost.nfe:
                result.nfe.append(NfeChange(label, before.cost.nfe, after.cost.nfe or 0))
            for metric, entry in before.metrics.items():
                if metric not in after.metrics:
                    result.missing.append(f"{label} metric {metric}")
                    continue
                old = entry.measured()
                new = after.metrics[metric].measured()
                result.changes.append(Change(
                    label, metric, entry.direction, old.value, new.value,
                    min_effects.for_metric(metric, before.identity.dataset),
                    difference([old], [new]), alpha))
    result.new += [record.identity.label() for record in now.values() if record.status == "ok"]
    result.notes = provenance_notes(baseline, current)
    return result


def provenance_notes(baseline: list[Record], current: list[Record]) -> list[str]:
    """What made the two runs differ besides their configuration: other plugin code in
    matched cells, other arbench versions. Expected of a pull request that changes a
    sampler, so said as notes, never as a verdict."""
    now = {record.key: record for record in current}
    pairs = [(before, now[before.key]) for before in baseline if before.key in now]
    changed = sorted({name for before, after in pairs
                      for name in before.provenance.code.keys() | after.provenance.code.keys()
                      if before.provenance.code.get(name) != after.provenance.code.get(name)})
    notes = []
    if changed:
        cells = sum(before.provenance.code != after.provenance.code for before, after in pairs)
        notes.append(f"{cells} of the {len(pairs)} matched cell(s) were made by other code: "
                     f"{', '.join(changed[:8])}{' ...' if len(changed) > 8 else ''} "
                     "(a change to these plugins is what this comparison judges)")
    versions = [sorted({record.provenance.arbench_version or "unknown" for record in records})
                for records in (baseline, current)]
    if versions[0] != versions[1]:
        notes.append(f"the runs were made by other arbench versions: baseline "
                     f"{', '.join(versions[0])}, current {', '.join(versions[1])}")
    return notes
