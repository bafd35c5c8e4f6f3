"""One self-contained HTML page: tables, plots, sample panels with audio players.

Everything is inline (CSS, PNGs and WAVs as data: URIs), so ``report.html`` reads
offline and can be mailed on its own; the plots and WAV files are also written
under ``plots/`` and ``samples/``, for papers and slides.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from tabulate import tabulate

from arbench import CELL_COLUMNS, PaperTable, Report, Reporter, atomic_write
from arbench_plugins.reporters.plots import (
    Panel,
    budget_curves,
    density_figures,
    sample_panels,
    save_pngs,
    walltime_plot,
    write_wavs,
)

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em;
       color: #222; }
h1 { border-bottom: 2px solid #ccc; }
h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f2f2f2; }
img { max-width: 100%; height: auto; }
figure { margin: 1em 0; }
figcaption { font-size: 0.85em; color: #555; }
.clips { display: flex; flex-wrap: wrap; gap: 0.5em 1.5em; }
.clips figure { margin: 0; }
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<h1>{title}</h1>
{body}
</body>
</html>
"""


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _image(data: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="{_data_uri("image/png", data)}">'


def _table(frame: pd.DataFrame, text_columns: list[str]) -> str:
    """`frame` as an HTML table, every cell escaped; other columns than `text_columns`
    (numbers) align right."""
    text = frame.map(lambda value: "-" if pd.isna(value) else html.escape(str(value)))
    return _unsafe_table(text, text_columns)


def _unsafe_table(frame: pd.DataFrame, text_columns: list[str]) -> str:
    """Headers are escaped here; cells must already be safe HTML."""
    align = ["left" if column in text_columns else "right" for column in frame.columns]
    frame = frame.set_axis([html.escape(str(c)) for c in frame.columns], axis=1)
    return tabulate(frame.values.tolist(), headers=list(frame.columns), tablefmt="unsafehtml",
                    disable_numparse=True, colalign=align)


def _paper_table(table: PaperTable) -> str:
    """Row fields escaped; entries are numbers with <b> around the best, <i> around ties;
    the note saying how the intervals and marks were made follows."""
    frame = table.formatted(lambda entry: entry.text(bold=("<b>", "</b>"), tie=("<i>", "</i>")))
    fields = table.row_fields
    frame[fields] = frame[fields].map(html.escape)
    note = html.escape(table.note).replace("**bold**", "<b>bold</b>").replace(
        "*italic*", "<i>italic</i>")
    return _unsafe_table(frame, fields) + f'\n<p class="note">{note}</p>'


def _figures(heading: str, figures: list[tuple[str, Figure]], out_dir: Path,
             written: list[Path]) -> str:
    if not figures:
        return ""
    saved = save_pngs(figures, out_dir)
    written += [path for path, _ in saved]
    images = "\n".join(f"<figure>{_image(data, path.stem)}</figure>" for path, data in saved)
    return f"<h2>{heading}</h2>\n{images}"


def _panel(panel: Panel, out_dir: Path, written: list[Path]) -> str:
    clips = "\n".join(
        f'<figure><figcaption>{html.escape(label)}</figcaption>'
        f'<audio controls src="{_data_uri("audio/wav", data)}"></audio></figure>'
        for label, data in panel.wavs.items())
    ((path, image),) = save_pngs([(panel.name, panel.figure)], out_dir)
    written.append(path)
    return (f"<h3>{html.escape(panel.title)}</h3>\n{_image(image, panel.title)}\n" +
            (f'<div class="clips">\n{clips}\n</div>' if clips else ""))


class HtmlReport(Reporter):
    """report.html: paper tables, metric vs NFE and sampler time, samples with audio players."""

    def write(self, report: Report, out_dir: Path) -> list[Path]:
        panels = sample_panels(report)
        parts = [f"<h2>{html.escape(table.task)}</h2>\n{_paper_table(table)}"
                 for table in report.tables]
        written: list[Path] = []
        parts.append(_figures("Metric vs NFE", budget_curves(report), out_dir, written))
        parts.append(_figures("Metric vs sampler time", walltime_plot(report), out_dir, written))
        parts.append(_figures("2-D densities", density_figures(report), out_dir, written))
        if panels:
            parts.append("<h2>Samples</h2>\n" +
                         "\n".join(_panel(panel, out_dir, written) for panel in panels))
        parts.append("<h2>All cells</h2>\n" +
                     (_table(report.summary, CELL_COLUMNS) if not report.summary.empty
                      else "<p>(no finished cells)</p>"))
        if not report.problems.empty:
            problems = _table(report.problems, list(report.problems.columns))
            parts.append(f"<h2>Skipped or failed cells</h2>\n{problems}")
        path = out_dir / "report.html"
        body = "\n\n".join(part for part in parts if part)
        page = PAGE.format(title=html.escape(report.title), css=CSS, body=body)
        atomic_write(path, lambda target: target.write_text(page, encoding="utf-8"))
        return [path, *written, *write_wavs(panels, out_dir)]
