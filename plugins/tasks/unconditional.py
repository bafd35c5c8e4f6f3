"""Unconditional generation: draw N samples, score how typical and how good they are.

With an exact-likelihood model (`causal-conditionals`), the samples' NLL under
the model (bits/dim) is compared with the test data's NLL: a sampler that
matches the model's distribution yields samples about as likely as real data.
On 8x8 digit images the samples also get FID and Inception Score in the
digits classifier's feature space (see `arbench_plugins.metrics.quality`):
FID is biased upward at small N, so compare it only at equal `n_samples`
(a few hundred or more for numbers worth quoting). Samples are kept for the
reports' sample panels.

The sampling call alone is timed (not the scoring, nor a 2-sample warm-up) and
recorded as ``extra["ms_per_sample"]``: reports show it beside the metrics
(time vs quality, as the anytime paper plots it), but it measures this
machine, so `arbench compare` never gates on it.
"""

from __future__ import annotations

import time

import torch

from arbench.capabilities import CausalConditionals, implements
from arbench.contracts import CellContext, Incompatible, Task, TaskOutput
from arbench.params import Param

DIGIT_SHAPE = (1, 8, 8)  # what the shipped digits classifier (the FID features) reads


def warm_up(cell: CellContext) -> None:
    """Draw 2 untimed samples first, so one-off costs (kernel selection, lazy allocation)
    do not land in the first cell's timing; every random stream is left as it was, so
    the timed samples are the same with or without this call."""
    devices = [cell.device] if cell.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        generator = torch.Generator(device=cell.device).manual_seed(cell.seed)
        cell.sampler.sample(cell.model, cell.dataset, 2, cell.budget, generator)


class Unconditional(Task):
    parameters = {  # FID needs N well above its 64 features (see quality.py)
        "n_samples": Param(256, "samples drawn and scored", ge=2),
    }

    def run(self, cell: CellContext) -> TaskOutput:
        if cell.model is None:
            raise Incompatible("unconditional generation needs a model to score the samples")
        warm_up(cell)
        started = time.perf_counter()
        drawn = cell.sampler.sample(
            cell.model, cell.dataset, self.params["n_samples"], cell.budget, cell.generator
        )
        if cell.device.type == "cuda":
            torch.cuda.synchronize(cell.device)
        seconds = time.perf_counter() - started
        cell.save_samples(samples=cell.dataset.continuous(drawn.samples))
        metrics = {}
        if implements(cell.model, CausalConditionals):
            with torch.no_grad():
                nll = -cell.model.log_prob(drawn.samples)
            # sample i of one cell is no relative of sample i of another: unpaired
            metrics["sample_nll_bpd"] = cell.metric("sample_nll_bpd").measure(
                nll, cell.dataset.dims).unpaired()
        if cell.dataset.modality == "image" and tuple(cell.dataset.shape) == DIGIT_SHAPE:
            for name in ("fid", "inception_score"):
                metrics[name] = cell.metric(name).measure(drawn.samples, cell.dataset)
        if not metrics:
            raise Incompatible(f"no metric scores these samples on '{cell.dataset.name}': "
                               "no exact model likelihood, no image-feature extractor")
        n = int(drawn.samples.shape[0])
        return TaskOutput(metrics=metrics, nfe=drawn.nfe,
                          extra={"n_samples": n, "ms_per_sample": 1000 * seconds / n})
