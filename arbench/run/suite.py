"""Suites: named sets of grids, and the gate their leaderboard is compared with.

A suite lives in ``leaderboards/<name>/suite.yaml``; the folder is also a run
folder (``cells/``) holding the committed results, and ``README.md``, their
rendered tables. Several grids let one suite give each sampler its own budgets
(ancestral at D network calls, PnF at a small budget)::

    name: smoke
    description: every task x sampler pair of the embedded defaults, small budgets
    alpha: 0.01                              # significance level of compare's tests
    min_effects: {default: 1%, snr_db: 0.3}  # the smallest changes that matter
    grids:
      - {tasks: [density], samplers: [ancestral]}
      - {tasks: [superres], samplers: [pnf], budgets: [64]}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arbench.errors import CompareError, GridError, ParameterError, did_you_mean
from arbench.results.compare import ALPHA, MinEffects, parse_alpha
from arbench.run.flags import parse_assignments
from arbench.run.grid import GridSpec, grid_from_mapping, parse_yaml, read_text

SUITE_FILE = "suite.yaml"
_KEYS = {"name", "description", "min_effects", "alpha", "grids", "references",
         "timing_repeats"}
TIMING_REPEATS = 3  # timed rounds of each sampler call, unless the suite or a flag says
_REFERENCE_KEYS = {"task", "sampler", "metric", "value", "variant", "budget"}


@dataclass(frozen=True)
class Reference:
    """A published figure the leaderboard shows beside arbench's own (never gated, never
    mixed into the results): the paper's `value` of `metric` for `sampler` on `task`,
    in the setting `variant` (``ratio=4``; empty for none) and at `budget` network calls
    (None: pooled over the budgets run)."""

    task: str
    sampler: str
    metric: str
    value: float
    variant: str = ""
    budget: int | None = None


@dataclass(frozen=True)
class Suite:
    """A suite file, parsed once: its grids, the gate `arbench compare` applies to its
    leaderboard (minimum effects, alpha), the published figures shown beside it, and the
    text it was read from (what a run folder keeps beside its results)."""

    name: str
    description: str
    grids: list[GridSpec]
    min_effects: dict[str, Any]
    alpha: float
    path: Path
    text: str
    references: list[Reference] = field(default_factory=list)
    reference_source: str = ""
    timing_repeats: int = TIMING_REPEATS  # its runs' timed rounds (a latency suite: more)

    @property
    def folder(self) -> Path:
        """The leaderboard folder: committed cells and the rendered README.md."""
        return self.path.parent


def leaderboard_roots() -> list[Path]:
    """Where suites are looked up: ./leaderboards, then the arbench checkout's."""
    checkout = Path(__file__).resolve().parents[2] / "leaderboards"
    return list(dict.fromkeys([Path.cwd() / "leaderboards", checkout]))


def find_suite(name: str) -> Path:
    """The suite file for a suite name (``smoke``) or a path to a suite YAML file."""
    given = Path(name)
    if given.suffix in (".yaml", ".yml") or given.is_file():
        if not given.is_file():
            raise GridError(f"suite file {given} does not exist")
        return given
    for root in leaderboard_roots():
        if (root / name / SUITE_FILE).is_file():
            return root / name / SUITE_FILE
    known = sorted({p.parent.name for root in leaderboard_roots()
                    for p in root.glob(f"*/{SUITE_FILE}")})
    raise GridError(f"no suite named '{name}'.{did_you_mean(name, known)} "
                    f"Known suites: {', '.join(known) or '(none)'}"
                    f"; or give the path of a {SUITE_FILE}")


def load_suite(path: Path) -> Suite:
    """Read and validate a suite file; errors name the file and the bad grid or key."""
    from arbench.errors import CompareError
    from arbench.results.compare import ALPHA, MinEffects, parse_alpha

    text = read_text(path)
    raw = parse_yaml(text, path)
    if not isinstance(raw, dict) or not isinstance(raw.get("grids"), list) or not raw["grids"]:
        raise GridError(f"{path}: a suite needs 'grids', a list of grids (see docs/suites.md)")
    unknown = set(raw) - _KEYS
    if "tolerances" in unknown:
        raise GridError(f"{path}: 'tolerances' is now 'min_effects' (the smallest change that "
                        "matters), and 'alpha' the tests' level; see docs/regressions.md")
    if unknown:
        raise GridError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    try:
        MinEffects.from_mapping(raw.get("min_effects"), f"{path}: min_effects")
        alpha = parse_alpha(raw.get("alpha", ALPHA), f"{path}: alpha")
    except CompareError as error:
        raise GridError(str(error)) from None
    grids = [grid_from_mapping(grid, f"{path}: grids[{index}]")
             for index, grid in enumerate(raw["grids"])]
    name = str(raw.get("name") or Path(path).parent.name)
    source, references = _references(raw.get("references"), f"{path}: references")
    repeats = raw.get("timing_repeats", TIMING_REPEATS)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 0:
        raise GridError(f"{path}: timing_repeats {repeats!r} is not a whole number >= 0 (the "
                        "timed rounds of each sampler call)")
    return Suite(name=name, description=str(raw.get("description", "")), grids=grids,
                 min_effects=raw.get("min_effects") or {}, alpha=alpha, path=Path(path),
                 text=text, references=references, reference_source=source,
                 timing_repeats=repeats)


def _references(raw: Any, where: str) -> tuple[str, list[Reference]]:
    """``{source: "...", entries: [{task, sampler, metric, value, variant?, budget?}]}``."""
    if raw is None:
        return "", []
    if not isinstance(raw, dict) or not isinstance(raw.get("entries"), list):
        raise GridError(f"{where}: give {{source: TEXT, entries: [{{task, sampler, metric, "
                        "value, variant}}, ...]}}")
    found = []
    for index, entry in enumerate(raw["entries"]):
        if not isinstance(entry, dict) or not {"task", "sampler", "metric", "value"} <= set(
                entry) or set(entry) - _REFERENCE_KEYS:
            raise GridError(f"{where}: entries[{index}] needs task, sampler, metric and value "
                            f"(and may give variant and budget); got {entry!r}")
        if isinstance(entry["value"], bool) or not isinstance(entry["value"], int | float):
            raise GridError(f"{where}: entries[{index}]: value {entry['value']!r} is not a "
                            "number")
        budget = entry.get("budget")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)
                                   or budget < 1):
            raise GridError(f"{where}: entries[{index}]: budget {budget!r} is not a positive "
                            "whole number")
        found.append(Reference(str(entry["task"]), str(entry["sampler"]), str(entry["metric"]),
                               float(entry["value"]), str(entry.get("variant") or ""),
                               budget))
    return str(raw.get("source") or ""), found


def gate(flags: list[str], alpha: float | None, suite_effects: dict[str, Any] | None = None,
         suite_alpha: float = ALPHA) -> tuple[MinEffects, float]:
    """The minimum effects and alpha of a suite (`load_suite` read and checked
    them), overridden by ``METRIC=VALUE`` flags and an explicit alpha."""
    effects = MinEffects.from_mapping(suite_effects, "min_effects")
    try:
        parsed = parse_assignments(list(flags), "--min-effect")
    except ParameterError as error:
        raise CompareError(f"{error} (a number or a percentage: METRIC=0.5, METRIC=2%)") from None
    effects = effects.update(MinEffects.from_mapping(parsed, "--min-effect"))
    level = parse_alpha(alpha, "--alpha") if alpha is not None else suite_alpha
    return effects, level
