"""Unconditional generation: draw N samples, score how typical they are.

The samples' NLL under the model (bits/dim) is compared with the test data's
NLL: a sampler that matches the model's distribution yields samples about as
likely as real data. Samples are kept for the reports' sample panels.
"""

from __future__ import annotations

import torch

from arbench.contracts import CellContext, Incompatible, Task, TaskOutput


class Unconditional(Task):
    defaults = {"n_samples": 64}

    def run(self, cell: CellContext) -> TaskOutput:
        if cell.model is None:
            raise Incompatible("unconditional generation needs a model to score the samples")
        drawn = cell.sampler.sample(
            cell.model, cell.dataset, self.params["n_samples"], cell.budget, cell.generator
        )
        with torch.no_grad():
            nll = -cell.model.log_prob(drawn.samples)
        cell.save_samples(samples=cell.dataset.continuous(drawn.samples))
        bpd = cell.metric("sample_nll_bpd")(nll, cell.dataset.dims)
        return TaskOutput(metrics={"sample_nll_bpd": bpd}, nfe=drawn.nfe,
                          extra={"n_samples": int(drawn.samples.shape[0])})
