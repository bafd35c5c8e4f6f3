"""Table formats: markdown, LaTeX (booktabs), CSV of the tables, parquet of every value."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tabulate import tabulate

from arbench import Entry, Report, Reporter, atomic_write, markdown_report

# tabulate escapes LaTeX specials in every cell; these markers survive escaping and are
# swapped for the LaTeX commands afterwards, so row text stays escaped and entries get bold.
_LATEX_AFTER_ESCAPING = {"BOLDSTART": r"\textbf{", "BOLDEND": "}", "TIESTART": r"\textit{",
                         "TIEEND": "}", "PLUSMINUS": r"$\pm$",
                         "↓": r"$\downarrow$", "↑": r"$\uparrow$"}


class Markdown(Reporter):
    """What `arbench run` prints, as report.md."""

    def write(self, report: Report, out_dir: Path) -> list[Path]:
        text = f"# {report.title}\n\n{markdown_report(report)}\n"
        return [atomic_write(out_dir / "report.md", lambda path: path.write_text(text))]


def _latex_note(note: str) -> str:
    text = note.replace("**bold**", r"\textbf{bold}").replace("*italic*", r"\textit{italic}")
    return text.replace("±", r"$\pm$").replace("%", r"\%").replace("<", "$<$")


def latex_table(frame: pd.DataFrame, caption: str) -> str:
    """One booktabs `table` environment; bold marks the best entries."""
    body = tabulate(frame.values.tolist(), headers=list(frame.columns),
                    tablefmt="latex_booktabs")
    for marker, command in _LATEX_AFTER_ESCAPING.items():
        body = body.replace(marker, command)
    return ("\\begin{table}[t]\n\\centering\n\\small\n" + body +
            f"\n\\caption{{{caption}}}\n\\end{{table}}\n")


class Latex(Reporter):
    """The paper tables as report.tex (needs \\usepackage{booktabs})."""

    def write(self, report: Report, out_dir: Path) -> list[Path]:
        def entry_text(entry: Entry) -> str:
            return entry.text(bold=("BOLDSTART", "BOLDEND"), plus_minus="PLUSMINUS",
                              tie=("TIESTART", "TIEEND"))

        tables = [latex_table(table.formatted(entry_text),
                              table.task.replace("_", r"\_") + ": " + _latex_note(table.note))
                  for table in report.tables]
        text = f"% {report.title}; needs \\usepackage{{booktabs}}\n\n" + "\n".join(tables)
        return [atomic_write(out_dir / "report.tex", lambda path: path.write_text(text))]


def tables_frame(report: Report) -> pd.DataFrame:
    """Every entry of every paper table as a row: task, row fields, column, mean, interval
    half-width and ends, n, best, tied."""
    rows = []
    for table in report.tables:
        for _, line in table.frame.iterrows():
            fields = {name: line[name] for name in table.row_fields}
            for column in table.frame.columns.drop(table.row_fields):
                entry = line[column]
                if isinstance(entry, Entry):
                    rows.append({"task": table.task, **fields, "column": column,
                                 "mean": entry.mean, "half_width": entry.half_width,
                                 "low": entry.low, "high": entry.high,
                                 "n": entry.n, "best": entry.best, "tied": entry.tied})
    return pd.DataFrame(rows)


class Csv(Reporter):
    """The paper tables' numbers, one row per entry, as tables.csv."""

    def write(self, report: Report, out_dir: Path) -> list[Path]:
        frame = tables_frame(report)
        return [atomic_write(out_dir / "tables.csv", lambda path: frame.to_csv(path, index=False))]


class Parquet(Reporter):
    """Every (cell, seed, metric) value as long.parquet, for pandas and pyarrow users."""

    def write(self, report: Report, out_dir: Path) -> list[Path]:
        frame = report.tidy()
        return [atomic_write(out_dir / "long.parquet",
                             lambda path: frame.to_parquet(path, index=False))]
