"""Source separation: split a mixture (the sum of the sources) back into its sources.

PnF runs one prior per source, tied by the mixture-consistency term with
gamma = weight / sigma^2. The original uses weight 15 for audio with step
eta = 0.05 sigma^2, i.e. eta * gamma = 0.75 per step; arbench's pnf steps with
eta = 0.5 sigma^2, so the audio default is 1.5 to keep eta * gamma = 0.75
(a larger product makes the two sources' updates overshoot and diverge).
Images: weight 1 (REFERENCE), eta * gamma = 0.5.
Scored by SI-SDR per source and overall (the mixture baseline's SI-SDR is the
input SI-SDR, so differences read as SI-SDRi) and, for audio, by the classic
BSS-eval SDR (its 512-tap distortion filter is meaningless on 64-pixel images).
"""

from __future__ import annotations

from arbench import CellContext, Incompatible, Measured, Mixture, Param, Task, TaskOutput
from arbench_plugins.tasks.common import HeldOut, held_out_signals

DEFAULT_WEIGHT = {"audio": 1.5, "image": 1.0}


class Separation(Task):
    class Params(HeldOut):
        n_examples: int = Param(8, "held-out mixtures separated", ge=1)
        weight: float | None = Param(None, "weight of the mixture constraint (None: per "
                                     "modality)", gt=0)

    params: Params

    def run(self, cell: CellContext) -> TaskOutput:
        sources = cell.dataset.sources
        if len(sources) < 2:
            raise Incompatible(f"dataset '{cell.dataset.name}' has no sources to separate")
        # (B, S, ...)
        truth = held_out_signals(cell, self.params.n_examples, self.params.split)
        weight = self.params.weight or DEFAULT_WEIGHT.get(cell.dataset.modality, 1.0)
        condition = Mixture(mixture=truth.sum(dim=1), weight=weight)
        drawn = cell.sampler.sample(cell.model, cell.dataset, truth.shape[0], cell.budget,
                                    cell.generator, condition=condition)
        estimate = drawn.samples
        cell.save_samples(estimate=estimate, reference=truth, mixture=condition.mixture)
        si_sdr = cell.metric("si_sdr_db")
        per_source = [si_sdr.per_example(estimate[:, i], truth[:, i])
                      for i in range(len(sources))]
        metrics = {f"si_sdr_db/{name}": Measured.of_examples(values)
                   for name, values in zip(sources, per_source, strict=True)}
        metrics["si_sdr_db"] = Measured.of_examples(sum(per_source) / len(sources))
        if cell.dataset.modality == "audio":  # BSS-eval's 512-tap filter needs long signals
            metrics["sdr_db"] = cell.metric("sdr_db").measure(estimate, truth)
        return TaskOutput(metrics=metrics, nfe=drawn.nfe,
                          extra={"weight": weight, "n_examples": int(truth.shape[0])})
