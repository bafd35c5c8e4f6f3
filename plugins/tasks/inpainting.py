"""Inpainting: fill a hidden region (an audio gap, the centre patch of an image).

Everything outside the region is a hard constraint. Scored by SNR over the
hidden values only, so the unchanged observed part cannot inflate the score.
"""

from __future__ import annotations

import torch

from arbench import CellContext, Incompatible, Observed, Param, Task, TaskOutput
from arbench_plugins.tasks.common import HeldOut, held_out_signals


def hole_mask(shape: tuple[int, ...], modality: str, fraction: float) -> torch.Tensor:
    """True at the hidden positions: a centred gap (audio) or square patch (image)."""
    hidden = torch.zeros(shape, dtype=torch.bool)
    if modality == "image":
        height, width = shape[-2:]
        h, w = max(1, round(height * fraction)), max(1, round(width * fraction))
        top, left = (height - h) // 2, (width - w) // 2
        hidden[..., top:top + h, left:left + w] = True
    else:
        length = shape[-1]
        gap = max(1, round(length * fraction))
        start = (length - gap) // 2
        hidden[..., start:start + gap] = True
    return hidden


class Inpainting(Task):
    """`fraction`: gap length / clip length (audio) or patch side / image side (image)."""

    class Params(HeldOut):
        fraction: float | None = Param(None, "fraction of each example hidden (None: 0.125 "
                                       "audio, 0.5 image)", gt=0, lt=1)
        n_examples: int = Param(8, "held-out examples inpainted", ge=1)

    params: Params
    default_fraction = {"audio": 0.125, "image": 0.5}

    def run(self, cell: CellContext) -> TaskOutput:
        if cell.dataset.sources:
            raise Incompatible("inpainting takes a single-source dataset")
        modality = cell.dataset.modality
        fraction = self.params.fraction or self.default_fraction.get(modality, 0.125)
        truth = held_out_signals(cell, self.params.n_examples, self.params.split)
        hidden = hole_mask(cell.dataset.shape, modality, fraction).to(cell.device)
        hidden = hidden.expand_as(truth)
        condition = Observed(mask=~hidden, values=truth)
        drawn = cell.sampler.sample(cell.model, cell.dataset, truth.shape[0], cell.budget,
                                    cell.generator, condition=condition)
        estimate = drawn.samples
        cell.save_samples(estimate=estimate, reference=truth)
        batch, decode = truth.shape[0], cell.dataset.decode  # scored on the signal
        snr = cell.metric("snr_db").measure(decode(estimate[hidden]).view(batch, -1),
                                            decode(truth[hidden]).view(batch, -1))
        return TaskOutput(metrics={"snr_db/hidden": snr}, nfe=drawn.nfe,
                          extra={"fraction": fraction, "n_examples": batch})
