"""Plots of a `Report`: metric vs NFE, metric vs sampler time, each cell's samples, and the
2-D datasets' densities.

Figures are `matplotlib.figure.Figure` objects on the Agg canvas, never pyplot's, so
no global state leaks; `png` renders one and clears it. Sample panels read the
``samples.pt`` a task saved with `CellContext.save_samples`; audio panels also carry
their clips as WAV bytes, written under ``samples/`` (and embedded by the HTML report).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter
from scipy import signal

from arbench import (
    COST_METRICS,
    Record,
    Report,
    Reporter,
    Samples,
    atomic_write,
    estimate,
    variant_label,
)

LINE_FIELDS = ["dataset", "variant", "model", "sampler"]  # one line (or colour) per value
MARKERS = "osD^vPX*"
GRID_EXAMPLES = 16  # images drawn per tensor
AUDIO_EXAMPLES = 2  # clips drawn and written as WAV per tensor (and source)
DENSITY_TENSORS = {"density", "data", "extent"}  # what the density task saves


@dataclass
class Panel:
    """One cell's samples: a figure and, for audio, WAV file bytes by clip label."""

    name: str  # file-name stem, unique per cell
    title: str
    figure: Figure
    wavs: dict[str, bytes] = field(default_factory=dict)


def safe_name(text: str) -> str:
    """`text` as a file name of [A-Za-z0-9._=-]: runs of other characters (and _) become _."""
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", text).strip("._-") or "plot"


def png(figure: Figure) -> bytes:
    """The figure as PNG bytes; the figure is cleared afterwards to free its memory."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    figure.clear()
    return buffer.getvalue()


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib figure of `width` x `height` inches, off screen."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _natural(text: str) -> str:
    """Sort "ratio=4" before "ratio=16": digit runs compare as numbers."""
    return re.sub(r"\d+", lambda m: m.group().zfill(12), text)


def _line_labels(frame: pd.DataFrame) -> pd.Series:
    """Each row's line label: the line fields that vary within `frame`, "-" and "" left out."""
    fields = [f for f in LINE_FIELDS if frame[f].nunique() > 1] or ["sampler"]
    return frame[fields].apply(lambda row: " / ".join(v for v in row if v not in ("", "-")),
                               axis=1)


def _log_x_if_wide(ax: Axes, values: pd.Series, ticks_at_values: bool) -> None:
    """Log x axis when the positive values span more than 10x (symlog when there are zeros)."""
    positive = values[values > 0]
    if not len(positive) or positive.max() <= 10 * positive.min():
        return
    if (values <= 0).any():
        ax.set_xscale("symlog", linthresh=float(positive.min()))
    else:
        ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    if ticks_at_values and values.nunique() <= 8:
        ax.set_xticks(sorted(values.unique()), [f"{v:g}" for v in sorted(values.unique())])


def _metric_figures(report: Report, x: str, x_label: str, what: str,
                    draw: Callable[[Axes, pd.DataFrame, dict[str, Any]], Any]
                    ) -> list[tuple[str, Figure]]:
    """Per task, one subplot per metric; `draw` adds one labelled series per line."""
    long = report.long.dropna(subset=[x])
    if x == "sampler_time_s":  # time against time says nothing
        long = long[~long["metric"].isin(COST_METRICS)]
    long = long.assign(model=long["model"].fillna("-"), variant=long["variant"].fillna(""))
    figures = []
    for task, frame in long.groupby("task", sort=True):
        labels = _line_labels(frame)
        styles = {label: {"color": f"C{i % 10}", "marker": MARKERS[i % len(MARKERS)]}
                  for i, label in enumerate(sorted(labels.unique(), key=_natural))}
        metrics = sorted(frame["metric"].unique(), key=_natural)
        columns = min(len(metrics), 3)
        figure = new_figure(4.2 * columns + 2.5, 3.2 * math.ceil(len(metrics) / columns))
        axes = figure.subplots(math.ceil(len(metrics) / columns), columns, squeeze=False).ravel()
        for ax, metric in zip(axes, metrics, strict=False):
            part = frame[frame["metric"] == metric]
            for label, line in part.groupby(labels[part.index], sort=False):
                draw(ax, line.sort_values(x), {"label": label, **styles[label]})
            _log_x_if_wide(ax, frame[x], ticks_at_values=x == "nfe")
            unit, direction = part["unit"].iloc[0], part["direction"].iloc[0]
            ax.set(xlabel=x_label, ylabel=(f"{metric} ({unit})" if unit else metric) +
                   f"\n({direction} is better)")
            ax.grid(alpha=0.3)
        for ax in axes[len(metrics):]:
            ax.remove()
        handles = {label: handle for ax in figure.axes
                   for handle, label in zip(*ax.get_legend_handles_labels(), strict=True)}
        figure.legend([handles[label] for label in styles], list(styles),
                      loc="outside right upper", fontsize=8)
        figure.suptitle(f"{task}: {what}")
        figures.append((f"{task}_vs_{x}", figure))
    return figures


def budget_curves(report: Report) -> list[tuple[str, Figure]]:
    """Per task: each metric's mean vs NFE with its 95% interval as error bars (the tables'
    intervals, `arbench.results.statistics.estimate`), one line per dataset / variant / model /
    sampler."""
    def curve(ax: Axes, line: pd.DataFrame, style: dict[str, Any]) -> None:
        found = {nfe: estimate(list(group.sort_values("seed")["measured"]))
                 for nfe, group in line.groupby("nfe")}
        xs = np.array(list(found), dtype=float)
        ax.plot(xs, [e.mean for e in found.values()], **style)
        # each interval as drawn from its ends: a lopsided one (a small-sample FID) may
        # not contain its mean, which error bars cannot show
        bars = [(x, e.low, e.high) for x, e in zip(xs, found.values(), strict=True)
                if e.low is not None and e.high is not None]
        if bars:
            x, low, high = zip(*bars, strict=True)
            ax.vlines(x, low, high, color=style["color"], linewidth=1.2)

    return _metric_figures(report, "nfe", "NFE (network evaluations)", "metric vs NFE", curve)


def walltime_plot(report: Report) -> list[tuple[str, Figure]]:
    """Per task: each metric vs the sampler's own time (`arbench.run.cost`: no loading, no
    metrics), one point per cell and seed."""
    def scatter(ax: Axes, points: pd.DataFrame, style: dict[str, Any]) -> None:
        ax.scatter(points["sampler_time_s"], points["value"], alpha=0.8, **style)

    return _metric_figures(report, "sampler_time_s", "sampler time (s)",
                           "metric vs sampler time", scatter)


def first_seed_cells(records: list[Record]) -> list[Record]:
    """The ok record of the smallest seed of each cell, ordered by task and cell."""
    first: dict[tuple[Any, ...], Record] = {}
    for record in records:
        cell = _fields(record)
        if record.status == "ok" and (
                cell not in first or record.identity.seed < first[cell].identity.seed):
            first[cell] = record
    return sorted(first.values(), key=lambda record: _natural(_cell_title(record)))


def _fields(record: Record) -> tuple[Any, ...]:
    """What names a cell in a table: task, dataset, variant, model, sampler, budget."""
    cell = record.identity
    return cell.task, cell.dataset, cell.variant, cell.model, cell.sampler, cell.budget


def _cell_title(record: Record) -> str:
    cell = record.identity
    budget = "default budget" if cell.budget is None else f"budget {cell.budget}"
    parts = [*_fields(record)[:-1], f"{budget} (NFE {record.cost.nfe})", f"seed {cell.seed}"]
    return " · ".join(str(part) for part in parts if part)


def _views(saved: Samples) -> list[tuple[str, np.ndarray]]:
    """Each saved tensor as (label, examples), split by source where it has a source axis."""
    sources, shape = list(saved.sources), list(saved.shape)
    # A multi-source dataset's shape may include the source axis; a source's does not.
    source_ndim = len(shape) - 1 if sources and shape[:1] == [len(sources)] else len(shape)
    views = []
    for name, tensor in saved.tensors.items():
        array = tensor.float().clamp(-1, 1).numpy()
        if sources and array.ndim == source_ndim + 2:
            views += [(f"{name} ({source})", array[:, i]) for i, source in enumerate(sources)]
        else:
            views.append((name, array))
    return views


def _tile(images: np.ndarray) -> np.ndarray:
    """Images ``(n, [C,] H, W)`` as one near-square grid ``(H', W'[, 3])``, grey between."""
    images = images[:, None] if images.ndim == 3 else images
    images = images if images.shape[1] == 3 else images[:, :1]
    n, channels, height, width = images.shape
    columns = math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.zeros((rows * (height + 1) - 1, columns * (width + 1) - 1, channels))
    for i, image in enumerate(images):
        top, left = (i // columns) * (height + 1), (i % columns) * (width + 1)
        grid[top:top + height, left:left + width] = image.transpose(1, 2, 0)
    return grid[..., 0] if channels == 1 else (grid + 1) / 2


def _image_figure(views: list[tuple[str, np.ndarray]]) -> Figure:
    figure = new_figure(max(2.2 * len(views), 6), 2.7)
    for ax, (name, images) in zip(figure.subplots(1, len(views), squeeze=False)[0], views,
                                  strict=True):
        ax.imshow(_tile(images[:GRID_EXAMPLES]), cmap="gray", vmin=-1, vmax=1,
                  interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    return figure


def _audio_figure(views: list[tuple[str, np.ndarray]], rate: int) -> Figure:
    """One row per tensor (and source): waveform and spectrogram of the first clips."""
    shown = min(AUDIO_EXAMPLES, *(len(clips) for _, clips in views))
    figure = new_figure(3.4 * 2 * shown, 1.7 * len(views) + 0.6)
    axes = figure.subplots(len(views), 2 * shown, squeeze=False)
    for row, (name, clips) in zip(axes, views, strict=True):
        for i in range(shown):
            clip, wave_ax, spec_ax = clips[i].reshape(-1), row[2 * i], row[2 * i + 1]
            wave_ax.plot(np.arange(len(clip)) / rate, clip, linewidth=0.5)
            wave_ax.set_ylim(-1.05, 1.05)
            wave_ax.set_title(f"{name} #{i + 1}", fontsize=9)
            segment = min(128, len(clip))
            freqs, times, power = signal.spectrogram(clip, fs=rate, nperseg=segment,
                                                     noverlap=segment * 3 // 4)
            decibels = 10 * np.log10(power + 1e-12)
            spec_ax.pcolormesh(times, freqs, decibels, shading="auto", cmap="magma",
                               vmin=decibels.max() - 80, vmax=decibels.max())
            spec_ax.set_ylabel("Hz")
            spec_ax.set_title(f"{name} #{i + 1} spectrogram", fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    return figure


def wav_bytes(clip: np.ndarray, rate: int) -> bytes:
    """A 16-bit PCM WAV file of `clip` (values in [-1, 1])."""
    buffer = io.BytesIO()
    soundfile.write(buffer, clip, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _panel(record: Record, saved: Samples) -> Panel | None:
    """The panel of one cell's saved samples; None for what it cannot draw."""
    views, title = _views(saved), _cell_title(record)
    modality, rate = saved.modality, saved.sample_rate
    if modality == "image":  # (n, [C,] H, W) only: other tensors (e.g. labels) are not drawn
        views = [(label, images) for label, images in views if images.ndim in (3, 4)]
    cell = record.identity
    fields = [*_fields(record)[:-1], cell.budget is not None and f"b{cell.budget}",
              f"seed{cell.seed}", record.key[:8]]
    name = safe_name("_".join(["samples", *(str(f) for f in fields if f)]))
    if views and modality == "image":
        panel = Panel(name, title, _image_figure(views))
    elif views and modality == "audio" and rate:
        wavs = {f"{label} #{i + 1}": wav_bytes(clips[i].reshape(-1), rate)
                for label, clips in views for i in range(min(AUDIO_EXAMPLES, len(clips)))}
        panel = Panel(name, title, _audio_figure(views, rate), wavs)
    else:
        return None
    panel.figure.suptitle(title, fontsize=10)
    return panel


def saved_samples(report: Report) -> list[tuple[Record, Samples]]:
    """(record, saved samples) of each cell (its first seed) whose run folder holds them;
    a damaged file is left out and listed in `report.damaged` by `Report.saved_samples`."""
    found = ((record, report.saved_samples(record))
             for record in first_seed_cells(report.records))
    return [(record, samples) for record, samples in found if samples is not None]


def sample_panels(report: Report) -> list[Panel]:
    """One panel per cell (its first seed) whose run folder holds its saved samples."""
    panels = (_panel(record, saved) for record, saved in saved_samples(report))
    return [panel for panel in panels if panel]


def _model_label(record: Record) -> str:
    """"made-mol (mixtures=6)": the model (or the sampler of a model-free cell) and its
    variant."""
    model = record.identity.model or record.identity.sampler
    variant = variant_label(record.identity.swept, record.identity.task, [model])
    return f"{model} ({variant})" if variant else model


def density_figures(report: Report) -> list[tuple[str, Figure]]:
    """Per 2-D dataset: the test points' histogram, then each density cell's scored density
    (exp(-NLL) on the grid the density task saved), side by side on the data's colour scale."""
    cells: dict[str, list[tuple[Record, Mapping[str, torch.Tensor]]]] = {}
    for record, saved in saved_samples(report):
        if (record.identity.task == "density" and saved.tensors.keys() >= DENSITY_TENSORS
                and saved.tensors["extent"].numel() == 4):
            cells.setdefault(record.identity.dataset, []).append((record, saved.tensors))
    figures = []
    for dataset, found in sorted(cells.items()):
        data, extent = found[0][1]["data"].numpy(), found[0][1]["extent"].tolist()
        width = 2.8 * (extent[1] - extent[0]) / (extent[3] - extent[2])
        figure = new_figure(width * (len(found) + 1) + 0.5, 3.2)
        axes = figure.subplots(1, len(found) + 1, squeeze=False)[0]
        panels = [("data (test points)", data)] + [
            (f"{_model_label(record)}\nNLL {record.metrics['nll_nats'].value:.3f} nats",
             tensors["density"].numpy()) for record, tensors in found]
        for ax, (title, density) in zip(axes, panels, strict=True):
            ax.imshow(density, origin="lower", extent=extent, cmap="magma", vmin=0,
                      vmax=float(data.max()), interpolation="nearest")
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        figure.suptitle(f"{dataset}: density", fontsize=10)
        figures.append((f"density_{dataset}", figure))
    return figures


def _write_bytes(path: Path, data: bytes) -> Path:
    """`data` written atomically: a full disk leaves no truncated file."""
    return atomic_write(path, lambda target: target.write_bytes(data))


def write_wavs(panels: list[Panel], out_dir: Path) -> list[Path]:
    """Every panel's clips as ``out_dir/samples/<panel>_<clip>.wav``."""
    paths = []
    for panel in panels:
        for label, data in panel.wavs.items():
            path = out_dir / "samples" / f"{safe_name(f'{panel.name}_{label}')}.wav"
            path.parent.mkdir(exist_ok=True)
            paths.append(_write_bytes(path, data))
    return paths


def save_pngs(figures: list[tuple[str, Figure]], out_dir: Path) -> list[tuple[Path, bytes]]:
    """Each named figure rendered once, written as ``out_dir/plots/<name>.png``."""
    saved = []
    for name, figure in figures:
        path = out_dir / "plots" / f"{safe_name(name)}.png"
        path.parent.mkdir(exist_ok=True)
        data = png(figure)
        saved.append((_write_bytes(path, data), data))
    return saved


def write_plots(report: Report, out_dir: Path) -> list[Path]:
    """Every figure as ``out_dir/plots/<name>.png`` and the clips under ``samples/``."""
    panels = sample_panels(report)
    figures = [*budget_curves(report), *walltime_plot(report), *density_figures(report),
               *((panel.name, panel.figure) for panel in panels)]
    return [path for path, _ in save_pngs(figures, out_dir)] + write_wavs(panels, out_dir)


class DensityPlots(Reporter):
    """``plots/density_<dataset>.png``: data and model densities of the 2-D density cells."""

    def write(self, report: Report, out_dir: Path) -> list[Path]:
        return [path for path, _ in save_pngs(density_figures(report), out_dir)]


class Plots(Reporter):
    """PNG plots (metric vs NFE and vs sampler time, sample panels) and the samples' WAVs."""

    def write(self, report: Report, out_dir: Path) -> list[Path]:
        return write_plots(report, out_dir)
