"""Density estimation: NLL of the test split under the sampler's generative process.

For an exact autoregressive model every sampler scores the same likelihood;
samplers with a step budget (ARDM's parallel policies) score the ELBO of the
budgeted process, so the table shows what the budget costs in bits/dim. On
2-D points the NLL is also given in nats per example, as 2-D papers print it,
and the cell keeps the density it scores on a grid over the dataset's
`plot_extent` (exp(-NLL) by the same sampler call, averaged over each grid cell) beside a
histogram of the test points, for the side-by-side density plots. Text read through a
tokenizer (a Hugging Face model's) is scored in bits per token (``nll_bpd``) and in bits
per UTF-8 byte (``nll_bpb``), which compares across tokenizers.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch

from arbench import CellContext, Param, Task, TaskOutput
from arbench_plugins.tasks.common import HeldOut

GRID_CELLS, SUBSAMPLES = 128, 3  # per axis


class Density(Task):
    class Params(HeldOut):
        max_examples: int | None = Param(None, "score only the first N examples (None: all)", ge=1)

    params: Params

    def run(self, cell: CellContext) -> TaskOutput:
        x = cell.dataset.load(self.params.split)
        if self.params.max_examples is not None:
            x = x[: self.params.max_examples]
        scored = cell.sampler.nll(cell.model, x.to(cell.device), cell.budget)
        metrics = {"nll_bpd": cell.metric("nll_bpd").measure(scored.nll_nats, cell.dataset.dims)}
        if cell.dataset.modality == "points":
            metrics["nll_nats"] = cell.metric("nll_nats").measure(scored.nll_nats)
        if isinstance(cell.dataset, Tokenized):  # text through a tokenizer: per byte too
            metrics["nll_bpb"] = cell.metric("nll_bpb").measure(
                scored.nll_nats, cell.dataset.byte_counts(x))
        if isinstance(cell.dataset, Plottable2D):
            cell.save_samples(**density_on_grid(cell, cell.dataset.plot_extent, x))
        return TaskOutput(metrics=metrics, nfe=scored.nfe,
                          extra={"examples": int(x.shape[0])})


@runtime_checkable
class Tokenized(Protocol):
    """Text read as a tokenizer's ids, whose examples know their UTF-8 bytes."""

    def byte_counts(self, x: torch.Tensor) -> torch.Tensor:
        """UTF-8 bytes of each example ``(N,)`` of `x` ``(N, *shape)``."""
        ...


@runtime_checkable
class Plottable2D(Protocol):
    """A 2-D dataset with the box its density plots show, (x0, x1, y0, y1)."""

    plot_extent: tuple[float, float, float, float]


def density_on_grid(cell: CellContext, extent: tuple[float, float, float, float],
                    x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The scored density and the test points' histogram on a GRID_CELLS^2 grid over
    `extent` (x0, x1, y0, y1); rows run along y, from y0 up. Each grid cell's density is
    the mean over SUBSAMPLES^2 points inside it, so a ring thinner than a cell shows as the
    histogram does instead of aliasing into dots."""
    x0, x1, y0, y1 = extent
    fine = GRID_CELLS * SUBSAMPLES
    xs = x0 + (x1 - x0) * (torch.arange(fine) + 0.5) / fine
    ys = y0 + (y1 - y0) * (torch.arange(fine) + 0.5) / fine
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(-1, 2)
    scored = cell.sampler.nll(cell.model, grid.to(cell.device), cell.budget)
    density = torch.exp(-scored.nll_nats.double().cpu()).reshape(
        GRID_CELLS, SUBSAMPLES, GRID_CELLS, SUBSAMPLES).mean(dim=(1, 3))
    points = x.double().cpu().numpy()
    counts, _, _ = np.histogram2d(points[:, 1], points[:, 0], bins=GRID_CELLS,
                                  range=[[y0, y1], [x0, x1]])
    area = (x1 - x0) * (y1 - y0) / GRID_CELLS**2
    return {"density": density, "data": torch.from_numpy(counts / (len(x) * area)),
            "extent": torch.tensor([x0, x1, y0, y1])}
