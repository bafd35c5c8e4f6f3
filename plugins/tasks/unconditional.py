"""Unconditional generation: draw N samples, score how typical and how good they are.

With an exact-likelihood model (`causal-conditionals`), the samples' NLL under
the model (bits/dim) is compared with the test data's NLL: a sampler that
matches the model's distribution yields samples about as likely as real data.
On 8x8 digit images the samples also get FID and Inception Score in the
digits classifier's feature space (see `arbench_plugins.metrics.quality`):
FID is biased upward at small N, so compare it only at equal `n_samples`
(a few hundred or more for numbers worth quoting). Samples are kept for the
reports' sample panels.
"""

from __future__ import annotations

import torch

from arbench.contracts import CellContext, Incompatible, Task, TaskOutput

DIGIT_SHAPE = (1, 8, 8)  # what the shipped digits classifier (the FID features) reads


class Unconditional(Task):
    defaults = {"n_samples": 64}

    def run(self, cell: CellContext) -> TaskOutput:
        if cell.model is None:
            raise Incompatible("unconditional generation needs a model to score the samples")
        drawn = cell.sampler.sample(
            cell.model, cell.dataset, self.params["n_samples"], cell.budget, cell.generator
        )
        cell.save_samples(samples=cell.dataset.continuous(drawn.samples))
        metrics = {}
        if "causal-conditionals" in cell.model.provides:
            with torch.no_grad():
                nll = -cell.model.log_prob(drawn.samples)
            metrics["sample_nll_bpd"] = cell.metric("sample_nll_bpd")(nll, cell.dataset.dims)
        if cell.dataset.modality == "image" and tuple(cell.dataset.shape) == DIGIT_SHAPE:
            for name in ("fid", "inception_score"):
                metrics[name] = cell.metric(name)(drawn.samples, cell.dataset)
        if not metrics:
            raise Incompatible(f"no metric scores these samples on '{cell.dataset.name}': "
                               "no exact model likelihood, no image-feature extractor")
        return TaskOutput(metrics=metrics, nfe=drawn.nfe,
                          extra={"n_samples": int(drawn.samples.shape[0])})
