"""The cells of a paper table: `Entry`, one number with its interval and marks, and
`PaperTable`, a task's table of them (what `arbench.report.build` builds and reporters format)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Entry:
    """One number of a paper table: the mean, its 95% interval (`low`, `high`; None where
    nothing was recorded to resample), what it pooled, and the best / tied marks. A
    symmetric interval prints as ``mean ± half-width``; a lopsided one (a small-sample
    FID, whose point estimate can lie outside its bootstrap interval) as
    ``mean [low, high]``."""

    mean: float
    half_width: float | None
    n: int
    best: bool = False
    tied: bool = False
    low: float | None = None
    high: float | None = None
    p: float | None = None  # a test's p-value, printed after the interval (agreement tables)
    p_holm: float | None = None  # the same adjusted over the table's tests (Holm)

    def text(self, bold: tuple[str, str] = ("**", "**"), plus_minus: str = "±",
             tie: tuple[str, str] = ("*", "*")) -> str:
        """The entry as text: mean and interval, in bold when it is the best, in italics
        when tied with it (the markers are the format's own)."""
        low, high = self.low, self.high
        if (low is None or high is None) and self.half_width is not None:  # symmetric only
            low, high = self.mean - self.half_width, self.mean + self.half_width
        value = interval_text(self.mean, low, high, plus_minus)
        if self.p is not None:
            holm = "" if self.p_holm is None else f", Holm {self.p_holm:.2g}"
            value = f"{value} (p {self.p:.2g}{holm})"
        if self.best:
            return f"{bold[0]}{value}{bold[1]}"
        return f"{tie[0]}{value}{tie[1]}" if self.tied else value


def interval_text(mean: float, low: float | None, high: float | None, plus_minus: str = "±",
                  digits: int = 3) -> str:
    """``mean ± half-width``, or ``mean [low, high]`` when the interval is lopsided (its
    two sides differ by more than a fifth of its width, or it excludes the mean); a mean
    below 0.01 (a speed-up against a baseline thousands of times cheaper) keeps
    `digits` significant digits instead of showing 0.000."""
    # `digits` decimals, or significant digits for a mean too small for them to show
    spec = f".{digits}g" if 0 < abs(mean) < 10 ** (1 - digits) else f".{digits}f"
    value = f"{mean:{spec}}"
    if low is None or high is None:
        return value
    below, above = mean - low, high - mean
    if below < 0 or above < 0 or abs(below - above) > 0.2 * (high - low):
        return f"{value} [{low:{spec}}, {high:{spec}}]"
    return f"{value} {plus_minus} {(high - low) / 2:{spec}}"


@dataclass
class PaperTable:
    """A task's table: `frame` holds the row fields as text columns, then `Entry` cells."""

    task: str
    frame: pd.DataFrame
    row_fields: list[str]
    note: str = ""

    def formatted(self, entry_text: Callable[[Entry], str]) -> pd.DataFrame:
        """The table with every Entry turned into text ("-" where a cell has no value)."""
        cells = self.frame.drop(columns=self.row_fields)
        text = cells.map(lambda e: entry_text(e) if isinstance(e, Entry) else "-")
        return pd.concat([self.frame[self.row_fields].astype(str), text], axis=1)
