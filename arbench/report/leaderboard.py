"""Leaderboards: a suite's committed results rendered as markdown, in its folder and on the
leaderboards page.

`arbench leaderboard NAME` rewrites ``leaderboards/NAME/README.md`` from the
committed cells, and the block between ``<!-- leaderboard:NAME -->`` and
``<!-- /leaderboard:NAME -->`` in ``leaderboards/README.md`` (if it has one) with the
paper tables, so the numbers people read are the numbers CI compares against.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from arbench.report.build import (
    ALPHA,
    Report,
    TaskViews,
    build_report,
    markdown,
    markdown_report,
)
from arbench.report.entries import Entry
from arbench.results.compare import MinEffects
from arbench.results.record import Record
from arbench.results.statistics import estimate
from arbench.run.suite import Suite


def tables_markdown(records: list[Record], views: TaskViews, alpha: float = ALPHA,
                    run_dirs: Iterable[Path] = ()) -> str:
    """Only the paper tables: what the leaderboards page shows."""
    report = build_report(records, views, run_dirs, alpha=alpha)
    notes = {table.note for table in report.tables}
    return "\n\n".join([*(f"**{table.task}**\n\n" + markdown(table.formatted(Entry.text))
                           for table in report.tables), *sorted(notes)])


def leaderboard_markdown(suite: Suite, records: list[Record],
                         views: TaskViews) -> str:
    """The leaderboard's README.md: what it is, how to rebuild it, then the full report."""
    ok = sum(record.status == "ok" for record in records)
    report = build_report(records, views, [suite.folder], alpha=suite.alpha,
                          min_effects=MinEffects.from_mapping(suite.min_effects))
    return (f"# Leaderboard: {suite.name}\n\n{suite.description}\n\n"
            f"Committed results of `arbench run --suite {suite.name}` ({ok} of {len(records)} "
            f"cells ok; definition in `{suite.path.name}`). Rebuild with "
            f"`arbench leaderboard {suite.name} --rerun`; gate a change against these cells "
            f"with `arbench compare {suite.folder.parent.name}/{suite.name} RUN`.\n\n"
            + references_markdown(suite, report) + markdown_report(report) + "\n")


def references_markdown(suite: Suite, report: Report) -> str:
    """The paper's figures beside arbench's for the same task, sampler, setting and metric
    (mean ± 95% half-width over the committed cells, or "not run"); empty without any."""
    if not suite.references:
        return ""
    long = report.long
    rows = []
    for ref in suite.references:
        match = long[(long["task"] == ref.task) & (long["sampler"] == ref.sampler)
                     & (long["metric"] == ref.metric)
                     & (long["variant"].fillna("") == ref.variant)]
        if ref.budget is not None:
            match = match[match["budget"] == ref.budget]
        ours = "not run"
        if not match.empty:
            found = estimate(list(match.sort_values("seed")["measured"]))
            ours = f"{found.mean:.2f}" + (f" ± {found.half_width:.2f}"
                                          if found.half_width is not None else "")
        rows.append([ref.task, ref.variant or "-", ref.sampler,
                     "-" if ref.budget is None else ref.budget, ref.metric, f"{ref.value:g}",
                     ours])
    frame = pd.DataFrame(rows, columns=["task", "setting", "sampler", "budget", "metric",
                                        "paper", "arbench"])
    source = f" ({suite.reference_source})" if suite.reference_source else ""
    return (f"## The paper's figures beside ours\n\nPublished figures{source}, shown for "
            "scale: they are data in the suite file, never compared or gated. arbench's "
            "column pools every committed cell of that sampler, setting and metric.\n\n"
            + markdown(frame) + "\n\n")


def replace_block(text: str, name: str, block: str) -> str | None:
    """`text` with the README block of leaderboard `name` replaced; None without markers."""
    pattern = re.compile(rf"(<!-- leaderboard:{re.escape(name)} -->\n).*?(<!-- /leaderboard:"
                         rf"{re.escape(name)} -->)", re.DOTALL)
    if not pattern.search(text):
        return None
    return pattern.sub(lambda m: m.group(1) + block.strip() + "\n" + m.group(2), text)


def write_leaderboard(suite: Suite, records: list[Record],
                      views: TaskViews, readme: Path | None) -> list[Path]:
    """Write the leaderboard's README.md and refresh `readme`'s block; return what changed."""
    target = suite.folder / "README.md"
    target.write_text(leaderboard_markdown(suite, records, views))
    written = [target]
    if readme is not None and readme.is_file():
        updated = replace_block(readme.read_text(), suite.name,
                                tables_markdown(records, views, suite.alpha, [suite.folder]))
        if updated is not None:
            readme.write_text(updated)
            written.append(readme)
    return written
