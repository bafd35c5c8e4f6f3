"""`arbench compare`: did CURRENT get worse than BASELINE, beyond tolerance?

Cells are matched by key (the hash of everything that can change their
numbers), so a regression is a change of code behind the same configuration.
Each metric's direction travels with the record; tolerances are absolute,
relative, or both (the larger allowance wins), looked up by
``DATASET:METRIC``, then ``DATASET:BASE`` (``voice:si_sdr_db`` covers
``si_sdr_db/piano`` on voice), then ``METRIC``, ``BASE`` and ``default``:
chaotic samplers on some data need wider allowances than exact ones elsewhere.

Exit codes, distinct so CI can tell a regression from a broken run:
0 nothing regressed, 1 a metric regressed or a cell that passed now fails,
2 could not compare (unreadable files, baseline cells missing from CURRENT).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tabulate import tabulate

NO_REGRESSION, REGRESSION, CANNOT_COMPARE = 0, 1, 2


class CompareError(ValueError):
    """The inputs cannot be compared (bad tolerance, unreadable results)."""


@dataclass(frozen=True)
class Tolerance:
    """How much worse a metric may get: at most max(abs, rel * |baseline|)."""

    abs: float = 0.0
    rel: float = 0.0

    def allowed(self, baseline: float) -> float:
        return max(self.abs, self.rel * abs(baseline))

    def __str__(self) -> str:
        parts = [f"±{self.abs:g}"] if self.abs else []
        if self.rel:
            parts.append(f"±{100 * self.rel:g}%")
        return " or ".join(parts) or "exact"


def parse_tolerance(value: Any, where: str = "tolerance") -> Tolerance:
    """``0.5`` (absolute), ``"2%"`` (relative) or ``{abs: 0.5, rel: 0.02}``."""
    if isinstance(value, dict) and set(value) - {"abs", "rel"}:
        unknown = sorted(set(value) - {"abs", "rel"})
        raise CompareError(f"{where}: unknown key(s) {unknown}; use abs and rel")
    try:
        if isinstance(value, dict):
            tolerance = Tolerance(float(value.get("abs", 0)), float(value.get("rel", 0)))
        elif isinstance(value, str) and value.strip().endswith("%"):
            tolerance = Tolerance(rel=float(value.strip()[:-1]) / 100)
        else:
            tolerance = Tolerance(abs=float(value))
    except (TypeError, ValueError):
        raise CompareError(f"{where}: '{value}' is not a tolerance; write 0.5, 2% "
                           "or {abs: 0.5, rel: 0.02}") from None
    if tolerance.abs < 0 or tolerance.rel < 0:
        raise CompareError(f"{where}: '{value}' is negative; tolerances are allowances >= 0")
    return tolerance


FLOAT_NOISE = Tolerance(abs=1e-9, rel=1e-6)


@dataclass
class Tolerances:
    """Per-metric tolerances and a `default` (when unset: float noise only)."""

    by_metric: dict[str, Tolerance] = field(default_factory=dict)
    default: Tolerance | None = None

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any] | None, where: str = "tolerances"
                     ) -> Tolerances:
        if not isinstance(mapping or {}, dict):
            raise CompareError(f"{where} must map metric names (or 'default') to tolerances")
        parsed = {name: parse_tolerance(value, f"{where}.{name}")
                  for name, value in (mapping or {}).items()}
        return cls(parsed, parsed.pop("default", None))

    def update(self, other: Tolerances) -> Tolerances:
        """These tolerances overridden by `other`'s (flags over the suite file)."""
        return Tolerances({**self.by_metric, **other.by_metric}, other.default or self.default)

    def for_metric(self, metric: str, dataset: str = "") -> Tolerance:
        base = metric.split("/")[0]
        for name in (f"{dataset}:{metric}", f"{dataset}:{base}", metric, base):
            if name in self.by_metric:
                return self.by_metric[name]
        return self.default or FLOAT_NOISE


@dataclass(frozen=True)
class Change:
    """One metric of one cell, in both runs."""

    cell: str
    metric: str
    direction: str
    baseline: float
    current: float
    tolerance: Tolerance

    @property
    def worse_by(self) -> float:
        """How much worse CURRENT is (negative: better), in the metric's unit."""
        delta = self.current - self.baseline
        return delta if self.direction == "lower" else -delta

    @property
    def verdict(self) -> str:
        allowed = self.tolerance.allowed(self.baseline)
        if self.worse_by > allowed:
            return "regressed"
        return "improved" if -self.worse_by > allowed else "unchanged"


@dataclass
class Comparison:
    changes: list[Change] = field(default_factory=list)
    now_failing: list[tuple[str, str]] = field(default_factory=list)  # (cell, reason)
    missing: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)

    def of(self, verdict: str) -> list[Change]:
        return [change for change in self.changes if change.verdict == verdict]

    @property
    def exit_code(self) -> int:
        if self.missing or not (self.changes or self.now_failing):
            return CANNOT_COMPARE
        return REGRESSION if self.of("regressed") or self.now_failing else NO_REGRESSION

    def markdown(self) -> str:
        """The diff as markdown, for a terminal or a pull-request comment."""
        outcome = {NO_REGRESSION: "no regression", REGRESSION: "REGRESSION",
                   CANNOT_COMPARE: "could not compare"}[self.exit_code]
        regressed = len(self.of("regressed")) + len(self.now_failing)
        lines = [f"## arbench compare: {outcome}", "",
                 f"{regressed} regressed, {len(self.of('improved'))} improved, "
                 f"{len(self.of('unchanged'))} unchanged metric(s); {len(self.missing)} missing "
                 f"and {len(self.new)} new cell(s)."]
        for verdict in ("regressed", "improved"):
            rows = [[c.cell, c.metric, f"{c.baseline:.4f}", f"{c.current:.4f}",
                     f"{c.current - c.baseline:+.4f}", str(c.tolerance)]
                    for c in self.of(verdict)]
            if rows:
                headers = ["cell", "metric", "baseline", "current", "change", "tolerance"]
                lines += ["", f"### {verdict.capitalize()}", "",
                          tabulate(rows, headers=headers, tablefmt="github")]
        if self.now_failing:
            lines += ["", "### Passed in the baseline, not now", "",
                      tabulate(self.now_failing, headers=["cell", "reason"], tablefmt="github")]
        for title, cells in (("Missing from CURRENT (rerun them, or regenerate the baseline "
                              "if their configuration changed on purpose)", self.missing),
                             ("New in CURRENT (not in the baseline)", self.new)):
            if cells:
                lines += ["", f"### {title}", "", *[f"- {cell}" for cell in cells]]
        return "\n".join(lines) + "\n"


def cell_label(record: dict[str, Any]) -> str:
    budget = "default" if record.get("budget") is None else record["budget"]
    variant = f" {record['variant']}" if record.get("variant") else ""
    return (f"{record['task']}/{record['dataset']}/{record.get('model') or '-'}/"
            f"{record['sampler']}{variant} budget={budget} seed={record['seed']}")


def compare_records(baseline: list[dict[str, Any]], current: list[dict[str, Any]],
                    tolerances: Tolerances | None = None) -> Comparison:
    """Match cells by key and judge every metric of the cells that are ok in the baseline."""
    tolerances = tolerances or Tolerances()
    now = {record["key"]: record for record in current}
    result = Comparison()
    for before in baseline:
        label = cell_label(before)
        after = now.pop(before["key"], None)
        if before["status"] != "ok":
            if after is not None and after["status"] == "ok":
                result.new.append(label + " (now runs)")
            continue
        if after is None:
            result.missing.append(label)
        elif after["status"] != "ok":
            result.now_failing.append((label, f"{after['status']}: {after.get('reason')}"))
        else:
            for metric, entry in before["metrics"].items():
                if metric not in after["metrics"]:
                    result.missing.append(f"{label} metric {metric}")
                    continue
                result.changes.append(Change(
                    label, metric, entry["direction"], entry["value"],
                    after["metrics"][metric]["value"],
                    tolerances.for_metric(metric, before["dataset"])))
    result.new += [cell_label(record) for record in now.values() if record["status"] == "ok"]
    return result
