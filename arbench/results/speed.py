"""The cost table's rows: sampler time, the speed-up against the sequential reference of
the same run, the compute arbench counted, and a decoding sampler's draft calls and
acceptance.

Every ok record made by today's runner keeps the sampler's own seconds for each
repeated timing (``sampler_timings_s``, see `arbench.run.cost`). Tables show them as
rows that `arbench compare` never gates (they measure this machine):

- ``sampler_s``: the mean timing, with a bootstrap interval over the timings (none
  from a single timing);
- ``speedup``: the reference's time over this entry's, where the reference is the
  task's reference sampler (`arbench.plugin.specs.TaskSpec.reference`: ancestral
  sampling with its cache, or the task's baseline). A record made by today's runner
  keeps the reference's timings on the same inputs, timed in turn with its own call by
  call (``reference_timings_s``, `arbench.run.cost`): the speed-up is then the mean of
  the per-round ratios, with a percentile bootstrap interval over rounds (paired, so a
  slow spell of the machine cancels). An older record is set against the reference's
  own record on the same data, task settings and seed in the same report (the same model
  where it ran on it, else model-free), its interval a bootstrap of the ratio of means
  resampling each side's timings independently (a single timing on both sides gives no
  interval).

The record's ``positions`` and ``flops`` per example (`COMPUTE`, counted by arbench:
`arbench.run.counting`, `arbench.run.flops`) join the table as they are.

A draft-and-verify sampler's sample diagnostics (`DECODING`: ``draft_nfe``, the draft's
calls per example, which it counts through `arbench.run.counting`; ``acceptance``, the
share of draft values kept, with a bootstrap interval over a cell's sample calls where
it made several (a prompt each); ``mat``, values finished per target call, Spec-Bench's
mean accepted tokens) join the same table, averaged over seeds, never gated.

Where the record has them (batch 1 on the CPU, `arbench.run.cost`), a target call's and
a drafted value's seconds in the reference's steps (`STEPS`: v and c) join it too, and
for a sampler with a draft, its acceptance a and k, the speed-up its calls alone allow,
``bound`` = (1 - a^(k+1)) / ((1 - a)(k c + v)) (Leviathan et al., 2023), and
``bound_share``, the measured speed-up over it: what the sampler's own work between
calls (the acceptance rule, its bookkeeping) costs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np

from arbench.results.direction import Direction
from arbench.results.record import Record
from arbench.results.statistics import RESAMPLES, Measured

UNIT_SECONDS, UNIT_RATIO = "s, not gated", "x, not gated"
UNIT_STEPS, UNIT_SHARE = "reference steps, not gated", "of the bound, not gated"
DECODING: dict[str, tuple[Direction, str]] = {
    "draft_nfe": ("lower", "draft calls per example"),
    "acceptance": ("higher", "share of draft values kept"),
    "mat": ("higher", "values per target call"),
}
"""Sample diagnostics of draft-and-verify samplers shown in the cost table: direction, unit."""
COMPUTE: dict[str, tuple[Direction, str, float]] = {
    "positions": ("lower", "target positions per example", 1.0),
    "flops": ("lower", "MFLOPs per example", 1e6),
}
"""The compute counted by arbench (`arbench.run.cost`) shown in the cost table: direction,
unit, and the record's figure per unit."""
STEPS: dict[str, Direction] = {"draft_steps": "lower", "call_steps": "lower"}
"""A drafted value's (c) and a target call's (v) seconds in the reference's steps."""
COST_METRICS = ("sampler_s", "speedup", "bound", "bound_share", *COMPUTE, *DECODING, *STEPS)
_SEED = 0


def timings(record: Record) -> np.ndarray | None:
    """The record's sampler timings in seconds, or None (a record from before them)."""
    values = record.cost.sampler_timings_s
    if not values:
        return None
    return np.asarray(values, dtype=np.float64)


def cost_rows(records: Iterable[Record], references: Mapping[str, str | None]
              ) -> dict[str, dict[str, tuple[Measured, Direction, str]]]:
    """``{key: {"sampler_s": (measured, direction, unit), "speedup": ..., "mat": ...}}`` for
    the ok records; `references` maps a task to its reference sampler."""
    records = [r for r in records if r.status == "ok"]
    rows = timing_rows(records, references)
    for record in records:
        speed = rows.get(record.key, {}).get("speedup")
        shown = compute_entries(record) | decoding_entries(record) | bound_entries(
            record, speed[0] if speed else None)
        if shown:
            rows.setdefault(record.key, {}).update(shown)
    return rows


def compute_entries(record: Record) -> dict[str, tuple[Measured, Direction, str]]:
    """The record's counted positions and FLOPs per example (none before they were kept)."""
    return {name: (Measured(float(value) / scale), direction, unit)
            for name, (direction, unit, scale) in COMPUTE.items()
            if isinstance(value := getattr(record.cost, name), int | float)}


def decoding_entries(record: Record) -> dict[str, tuple[Measured, Direction, str]]:
    """The record's `DECODING` sample diagnostics that are numbers; the acceptance of a
    cell of several sample calls (a prompt each) with a bootstrap interval over them."""
    sample = record.diagnostics.get("sample", {})
    found = {name: (Measured(float(value)), direction, unit)
             for name, (direction, unit) in DECODING.items()
             if isinstance(value := sample.get(name), int | float)}
    calls = sample.get("acceptance_calls")
    if "acceptance" in found and isinstance(calls, list) and len(calls) > 1:
        shares, sizes = np.asarray(calls, dtype=np.float64).T
        picks = np.random.default_rng(_SEED).integers(0, len(shares), (RESAMPLES, len(shares)))
        replicates = (shares[picks] * sizes[picks]).sum(1) / sizes[picks].sum(1)
        pooled, direction, unit = found["acceptance"]
        found["acceptance"] = (Measured(pooled.value, replicates=replicates), direction, unit)
    return found


def bound_entries(record: Record, speed: Measured | None
                  ) -> dict[str, tuple[Measured, Direction, str]]:
    """The record's `STEPS`, and the ``bound`` and ``bound_share`` of a sampler with a draft
    (its acceptance and k in its sample diagnostics) beside its measured `speed`-up."""
    entries = {name: (Measured(float(value)), direction, UNIT_STEPS)
               for name, direction in STEPS.items()
               if isinstance(value := getattr(record.cost, name), int | float)}
    sample = record.diagnostics.get("sample", {})
    a, k = sample.get("acceptance"), sample.get("k")
    c, v = record.cost.draft_steps, record.cost.call_steps
    if not (isinstance(a, int | float) and isinstance(k, int) and c is not None and v):
        return entries
    values = k + 1.0 if a >= 1 else (1 - a ** (k + 1)) / (1 - a)  # per call, expected
    bound = values / (k * c + v)
    entries["bound"] = (Measured(bound), "higher", UNIT_RATIO)
    if speed is not None:
        replicates = None if speed.replicates is None else speed.replicates / bound
        entries["bound_share"] = (Measured(speed.value / bound, replicates=replicates),
                                  "higher", UNIT_SHARE)
    return entries


def timing_rows(records: Iterable[Record], references: Mapping[str, str | None]
                ) -> dict[str, dict[str, tuple[Measured, Direction, str]]]:
    """``{key: {"sampler_s": (measured, direction, unit), "speedup": ...}}`` for the ok
    records with timings; `references` maps a task to its reference sampler."""
    timed = [r for r in records if r.status == "ok" and timings(r) is not None]
    by_setting: dict[str, list[Record]] = {}
    for record in timed:
        by_setting.setdefault(record.setting(), []).append(record)
    rows: dict[str, dict[str, tuple[Measured, Direction, str]]] = {}
    for record in timed:
        own = timings(record)
        assert own is not None
        seconds = Measured(float(own.mean()), own, paired=False) if own.size > 1 else \
            Measured(float(own.mean()))  # one timing: no interval to show
        entry: dict[str, tuple[Measured, Direction, str]] = {
            "sampler_s": (seconds, "lower", UNIT_SECONDS)}
        sampler = references.get(record.identity.task)
        paired = record.cost.reference_timings_s
        if paired:
            entry["speedup"] = (paired_speedup(np.asarray(paired, dtype=np.float64), own),
                                "higher", UNIT_RATIO)
        elif sampler is not None:
            reference = _reference(record, by_setting[record.setting()], sampler)
            reference_timings = timings(reference) if reference is not None else None
            if reference_timings is not None:
                entry["speedup"] = (speedup(reference_timings, own), "higher", UNIT_RATIO)
        rows[record.key] = entry
    return rows


def _reference(record: Record, candidates: list[Record], sampler: str) -> Record | None:
    """The reference sampler's record for `record`: on the same model with the same
    parameters first (the record itself, for the reference sampler), then the same model,
    then a model-free one."""
    found = [c for c in candidates if c.identity.sampler == sampler
             and not c.identity.swept.get(sampler)]  # not a variant of its own
    matchers: tuple[Callable[[Record], bool], ...] = (
        lambda c: c.model_setup() == record.model_setup(),
        lambda c: c.identity.model == record.identity.model,
        lambda c: c.identity.model is None)
    for matches in matchers:
        chosen = [c for c in found if matches(c)]
        if chosen:
            return chosen[0]
    return None


def paired_speedup(reference: np.ndarray, own: np.ndarray) -> Measured:
    """The mean over rounds of reference / own, timed in turn in each round, with bootstrap
    replicates over rounds where there are several."""
    ratios = reference / own
    if ratios.size < 2:
        return Measured(float(ratios.mean()))
    rng = np.random.default_rng(_SEED)
    replicates = rng.choice(ratios, (RESAMPLES, ratios.size)).mean(1)
    return Measured(float(ratios.mean()), replicates=replicates)


def speedup(reference: np.ndarray, own: np.ndarray) -> Measured:
    """mean(reference) / mean(own), with bootstrap replicates of the ratio where either side
    has more than one timing."""
    value = float(reference.mean() / own.mean())
    if reference.size < 2 and own.size < 2:
        return Measured(value)
    rng = np.random.default_rng(_SEED)
    ref = rng.choice(reference, (RESAMPLES, reference.size)).mean(1)
    mine = rng.choice(own, (RESAMPLES, own.size)).mean(1)
    return Measured(value, replicates=ref / mine)
