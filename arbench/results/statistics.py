"""Uncertainty for every number arbench reports, and the tests behind its verdicts.

A metric is kept with what its uncertainty comes from (`Measured`):

- per-example values (one per test clip, image or sequence, with stable example
  ids), whose mean is the metric. Two cells that score the same held-out
  examples (``paired``) are compared example by example: a Wilcoxon
  signed-rank test on the paired differences. Values of generated samples are
  not paired (sample i of one sampler has nothing to do with sample i of
  another): a Mann-Whitney U test.
- bootstrap replicates of a set-level metric (FID, IS: the metric recomputed on
  resampled generated sets), compared through the distribution of replicate
  differences.

Intervals are percentile bootstrap intervals of the mean over examples
(scipy.stats.bootstrap); with several seeds, an example's values are averaged over
them first (the examples are the units that vary), while generated samples are
pooled. Every resampling here is seeded, so a report repeats exactly.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 2000
REPLICATES = 200  # bootstrap replicates a set-level metric stores
_SEED = 0


@dataclass(frozen=True)
class Measured:
    """A metric's value and what its uncertainty is computed from.

    `per_example` holds the values whose mean is `value` (entry i belongs to example
    ``ids[i]``; ids default to 0..N-1, the first N examples of the split), or None.
    `replicates` holds bootstrap replicates of a set-level metric, or None.
    """

    value: float
    per_example: np.ndarray | None = None
    ids: np.ndarray | None = None
    paired: bool = True
    replicates: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.per_example is not None and self.ids is None:
            object.__setattr__(self, "ids", np.arange(self.per_example.size))

    @classmethod
    def of_examples(cls, values: Any, paired: bool = True) -> Measured:
        """The mean of per-example `values` (a tensor or array of shape (N,))."""
        array = _as_array(values)
        if array.ndim != 1 or array.size == 0:
            raise ValueError(f"per-example values must be a non-empty 1-D array, got shape "
                             f"{array.shape}")
        return cls(float(array.mean()), array, paired=paired)

    def unpaired(self) -> Measured:
        """The same values, marked as generated samples: compared with an unpaired test."""
        return replace(self, paired=False)

    def to_record(self) -> dict[str, Any]:
        """The compact JSON form kept in a result record (float32 values in base64)."""
        entry: dict[str, Any] = {"value": float(self.value)}
        if self.per_example is not None:
            entry["per_example"] = encode(self.per_example)
            entry["ids"] = encode_ids(self.ids)  # type: ignore[arg-type]
            entry["paired"] = self.paired
        if self.replicates is not None:
            entry["replicates"] = encode(self.replicates)
        return entry


def _as_array(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().double().cpu().numpy()
    return np.atleast_1d(np.asarray(values, dtype=np.float64))


def encode(values: np.ndarray) -> str:
    """float32 little-endian bytes in base64: 10,000 values in 53 kB of JSON."""
    return base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode("ascii")


def decode(text: str) -> np.ndarray:
    """Values stored as base64 float32 (`encode`), as an array."""
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float64)


def encode_ids(ids: np.ndarray) -> str | list[int]:
    """``"0:N"`` for the usual first N examples, else the list."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size and np.array_equal(ids, np.arange(ids[0], ids[0] + ids.size)):
        return f"{int(ids[0])}:{int(ids[0]) + ids.size}"
    return [int(i) for i in ids]


def decode_ids(value: str | list[int]) -> np.ndarray:
    """Example ids stored compactly (`encode_ids`), or as a plain list by older records."""
    if isinstance(value, str):
        start, _, stop = value.partition(":")
        return np.arange(int(start), int(stop))
    return np.asarray(value, dtype=np.int64)


# --- intervals -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A mean with its interval (None where nothing to resample), and what it pooled."""

    mean: float
    low: float | None
    high: float | None
    n: int  # examples pooled (or seeds, without per-example values)

    @property
    def half_width(self) -> float | None:
        """Half the interval's width, or None without an interval."""
        return None if self.low is None or self.high is None else (self.high - self.low) / 2


def bootstrap_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (seeded)."""
    from scipy.stats import bootstrap

    values = np.asarray(values, dtype=np.float64)
    if values.size < 2 or np.ptp(values) == 0:
        return float(values.mean()), float(values.mean())
    result = bootstrap((values,), np.mean, confidence_level=confidence, n_resamples=RESAMPLES,
                       method="percentile", vectorized=True, rng=np.random.default_rng(_SEED))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def estimate(measured: Sequence[Measured], confidence: float = CONFIDENCE) -> Estimate:
    """The mean over seeds of one cell group and its interval: per-example values pooled
    over seeds, else the seeds' replicates averaged replicate by replicate, else a t
    interval over the seeds' values (none from a single value)."""
    means = np.array([m.value for m in measured])
    if _all(measured, "per_example"):
        # Paired values are averaged over seeds example by example (the examples are the
        # units: a deterministic sampler's seeds are copies, not new evidence); generated
        # samples are pooled. The mean is the records' own float64 values; the stored
        # float32 examples only give the interval, shifted by the rounding between the two.
        _, pooled = _by_example(measured)
        low, high = bootstrap_interval(pooled, confidence)
        shift = float(means.mean()) - float(pooled.mean())
        return Estimate(float(means.mean()), low + shift, high + shift, pooled.size)
    if all(m.replicates is not None for m in measured):
        averaged = np.mean(_arrays(measured, "replicates"), axis=0)
        tail = 100 * (1 - confidence) / 2
        low, high = np.percentile(averaged, [tail, 100 - tail])
        return Estimate(float(means.mean()), float(low), float(high), len(measured))
    if len(means) > 1:  # a few seeds: Student's t, which a bootstrap of 2-3 values is not
        from scipy.stats import t

        half = float(t.ppf((1 + confidence) / 2, len(means) - 1) * means.std(ddof=1)
                     / np.sqrt(len(means)))
        return Estimate(float(means.mean()), means.mean() - half, means.mean() + half,
                        len(means))
    return Estimate(float(means.mean()), None, None, 1)


# --- tests -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """B minus A: mean difference, its interval, the test's p-value and name."""

    mean: float
    low: float | None
    high: float | None
    p: float | None
    test: str
    n: int = 0
    notes: list[str] = field(default_factory=list)


def difference(a: Sequence[Measured], b: Sequence[Measured],
               confidence: float = CONFIDENCE) -> Difference:
    """Test B against A (each a cell group's seeds).

    Paired per-example values are averaged over seeds per example and matched by
    example id; unpaired ones are pooled; set-level metrics compare their replicates
    (averaged over seeds, replicate by replicate). Without either there is no test
    (p None): a plain value carries no uncertainty.
    """
    mean = float(np.mean([m.value for m in b]) - np.mean([m.value for m in a]))
    if _all(a, "per_example") and _all(b, "per_example"):
        if all(m.paired for m in (*a, *b)):
            before, after = _matched(a, b)
            if before.size:
                diffs = after - before
                low, high = bootstrap_interval(diffs, confidence)
                return Difference(mean, low, high, wilcoxon_p(diffs),
                                  "Wilcoxon signed-rank", int(diffs.size))
        before = np.concatenate(_arrays(a, "per_example"))
        after = np.concatenate(_arrays(b, "per_example"))
        low, high = _independent_interval(before, after, confidence)
        return Difference(mean, low, high, mann_whitney_p(before, after), "Mann-Whitney U",
                          int(min(before.size, after.size)))
    if _all(a, "replicates") and _all(b, "replicates"):
        diffs = (np.mean(_arrays(b, "replicates"), axis=0)
                 - np.mean(_arrays(a, "replicates"), axis=0))
        tail = 100 * (1 - confidence) / 2
        low, high = np.percentile(diffs, [tail, 100 - tail])
        p = 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0))
        p = float(min(1.0, max(p, 1 / diffs.size))) if np.ptp(diffs) or diffs.any() else 1.0
        return Difference(mean, float(low), float(high), p, "bootstrap replicates",
                          int(diffs.size))
    return Difference(mean, None, None, None, "no uncertainty recorded")


def _all(group: Sequence[Measured], attribute: str) -> bool:
    return bool(group) and all(getattr(m, attribute) is not None for m in group)


def _arrays(group: Sequence[Measured], attribute: str) -> list[np.ndarray]:
    """The `attribute` arrays of `group` (per_example, ids or replicates); callers check
    with `_all` that every one has them."""
    arrays = [getattr(m, attribute) for m in group]
    if any(array is None for array in arrays):
        raise ValueError(f"a measurement without {attribute}")
    return arrays


def _by_example(group: Sequence[Measured]) -> tuple[np.ndarray | None, np.ndarray]:
    """(ids, values): paired values averaged over the seeds per example id; values of
    generated samples pooled over seeds (ids None: sample i of two seeds is no pair)."""
    values = np.concatenate(_arrays(group, "per_example"))
    if not all(m.paired for m in group):
        return None, values
    ids = np.concatenate(_arrays(group, "ids"))
    unique, inverse = np.unique(ids, return_inverse=True)
    return unique, np.bincount(inverse, weights=values) / np.bincount(inverse)


def _matched(a: Sequence[Measured], b: Sequence[Measured]) -> tuple[np.ndarray, np.ndarray]:
    """Seed-averaged values of the examples both groups scored, in one order."""
    a_ids, a_values = _by_example(a)
    b_ids, b_values = _by_example(b)
    if a_ids is None or b_ids is None:
        raise ValueError("only paired values (with example ids) can be matched")
    _, a_at, b_at = np.intersect1d(a_ids, b_ids, return_indices=True)
    return a_values[a_at], b_values[b_at]


def wilcoxon_p(diffs: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p of paired differences; 1 when none differ."""
    from scipy.stats import wilcoxon

    if not np.any(diffs != 0):
        return 1.0
    return float(wilcoxon(diffs, zero_method="wilcox").pvalue)


def mann_whitney_p(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sided Mann-Whitney U p-value of two unpaired samples (generated values)."""
    from scipy.stats import mannwhitneyu

    if np.array_equal(np.sort(a), np.sort(b)):
        return 1.0
    return float(mannwhitneyu(a, b).pvalue)


def _independent_interval(a: np.ndarray, b: np.ndarray,
                          confidence: float) -> tuple[float, float]:
    rng = np.random.default_rng(_SEED)
    means_a = a[rng.integers(0, a.size, (RESAMPLES, a.size))].mean(axis=1)
    means_b = b[rng.integers(0, b.size, (RESAMPLES, b.size))].mean(axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(means_b - means_a, [tail, 100 - tail])
    return float(low), float(high)


def resample_indices(n: int, replicates: int = REPLICATES, seed: int = _SEED) -> np.ndarray:
    """`replicates` bootstrap resamples of range(n), ``(replicates, n)``, seeded: what a
    set-level metric recomputes itself on."""
    return np.random.default_rng(seed).integers(0, n, (replicates, n))
