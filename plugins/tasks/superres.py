"""Super-resolution: recover a signal from every r-th sample (images: every r-th row and column).

The observed samples are a hard constraint (PnF fixes them and updates the
rest). Scored, like the PnF original, by SNR = 10 log10 |x|^2 / |x - x_hat|^2
over the whole signal (the waveform, `Dataset.decode`, for mu-law audio), plus
SI-SDR. The paper's ratios are swept by default:
4x, 8x, 16x for audio, 2x for images.
"""

from __future__ import annotations

import torch

from arbench import CellContext, Incompatible, Observed, Param, Task, TaskOutput
from arbench_plugins.tasks.common import HeldOut, held_out_signals


def subsample_mask(shape: tuple[int, ...], ratio: int, modality: str) -> torch.Tensor:
    """True at the observed positions of one example: every `ratio`-th along time or H and W."""
    mask = torch.zeros(shape, dtype=torch.bool)
    if modality == "image":
        mask[..., ::ratio, ::ratio] = True
    else:
        mask[..., ::ratio] = True
    return mask


class SuperResolution(Task):
    class Params(HeldOut):
        ratio: int = Param(4, "upsampling factor: one value in `ratio` is observed", ge=2)
        n_examples: int = Param(8, "held-out examples super-resolved", ge=1)

    params: Params

    def run(self, cell: CellContext) -> TaskOutput:
        if cell.dataset.sources:
            raise Incompatible("super-resolution takes a single-source dataset")
        truth = held_out_signals(cell, self.params.n_examples, self.params.split)
        ratio = int(self.params.ratio)
        mask = subsample_mask(cell.dataset.shape, ratio, cell.dataset.modality)
        condition = Observed(mask=mask.to(cell.device).expand_as(truth), values=truth)
        drawn = cell.sampler.sample(cell.model, cell.dataset, truth.shape[0], cell.budget,
                                    cell.generator, condition=condition)
        cell.save_samples(estimate=drawn.samples, reference=truth)
        estimate, truth = cell.dataset.decode(drawn.samples), cell.dataset.decode(truth)
        return TaskOutput(
            metrics={"snr_db": cell.metric("snr_db").measure(estimate, truth),
                     "si_sdr_db": cell.metric("si_sdr_db").measure(estimate, truth)},
            nfe=drawn.nfe,
            extra={"ratio": ratio, "n_examples": int(truth.shape[0])},
        )
