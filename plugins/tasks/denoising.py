"""Denoising: recover held-out examples from x~ = x + sigma * eps; PSNR in dB.

The distribution-smoothing paper's second use of the reverse model: x~ is
Gaussian noise on the test images (in data units, [-1, 1]) and a sampler given
the `Noisy` condition returns its estimate of x: single-step denoising returns
x~ + sigma^2 grad log p(x~) (the posterior mean), two-step a draw from
p(x | x~). The `noisy-input` baseline row scores x~ itself, so a sampler's gain
is the difference. `sigma` must match what the model was trained at (samplers
say so when it does not). The noise comes from the cell's generator, so every
sampler of one seed denoises the same x~.
"""

from __future__ import annotations

import torch

from arbench import CellContext, Noisy, Param, Task, TaskOutput
from arbench_plugins.tasks.common import HeldOut, held_out_signals


class Denoising(Task):
    """`sigma`: the noise level in data units; `n_examples`: test examples denoised."""

    class Params(HeldOut):
        sigma: float = Param(0.3, "noise standard deviation in data units", gt=0)
        n_examples: int = Param(256, "held-out examples denoised", ge=1)

    params: Params

    def run(self, cell: CellContext) -> TaskOutput:
        truth = held_out_signals(cell, self.params.n_examples, self.params.split)
        noise = torch.randn(truth.shape, generator=cell.generator, device=truth.device)
        noisy = truth + self.params.sigma * noise
        drawn = cell.sampler.sample(cell.model, cell.dataset, truth.shape[0], cell.budget,
                                    cell.generator, condition=Noisy(noisy, self.params.sigma))
        estimate = cell.dataset.continuous(drawn.samples)
        cell.save_samples(estimate=estimate, reference=truth, noisy=noisy)
        return TaskOutput(metrics={"psnr_db": cell.metric("psnr_db").measure(estimate, truth)},
                          nfe=drawn.nfe,
                          extra={"sigma": self.params.sigma, "n_examples": truth.shape[0]})
