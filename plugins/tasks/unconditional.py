"""Unconditional generation: draw N samples, score how typical and how good they are.

With an exact-likelihood model (`causal-conditionals`), the samples' NLL under
the model (bits/dim) is compared with the test data's NLL: a sampler that
matches the model's distribution yields samples about as likely as real data.
On 8x8 digit images the samples also get FID and Inception Score in the
digits classifier's feature space, and with ``quality=inception`` in the FID
Inception-V3's on any image dataset (see `arbench_plugins.metrics.quality`):
FID is biased upward at small N, so compare it only at equal `n_samples`
(a few hundred or more for numbers worth quoting). Samples are kept for the
reports' sample panels.

The runner times the sampler's calls alone (`arbench.run.cost`): reports show that
time beside the metrics (time vs quality, as the anytime paper plots it), but it
measures this machine, so `arbench compare` never gates on it.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from arbench import (
    CausalConditionals,
    CellContext,
    Incompatible,
    Param,
    SampleOutput,
    Task,
    TaskOutput,
    implements,
)

DIGIT_SHAPE = (1, 8, 8)  # what the shipped digits classifier (the FID features) reads


QUALITY = {"digits": ("fid", "inception_score"), "inception": ("fid_inception", "is_inception")}


class Unconditional(Task):
    class Params(Task.Params):
        n_samples: int = Param(256, "samples drawn and scored", ge=2)
        quality: Literal["auto", "digits", "inception", "none"] = Param(
            "auto", "FID and IS features: digits (the digits classifier), inception (the FID "
            "Inception-V3), none; auto: digits on 8x8 digits, else none")
        inception_weights: str | None = Param(
            None, "pytorch-fid's Inception weights file (default: $ARBENCH_INCEPTION_WEIGHTS "
            "or the torch hub cache)")
        sample_batch: int | None = Param(
            None, "samples per sampler call (None: all at once); bounds memory at paper sizes",
            ge=1)

    params: Params

    def _quality_metrics(self, cell: CellContext) -> tuple[tuple[str, ...], dict[str, Any]]:
        """The FID and IS metric names the `quality` parameter picks, and their params."""
        quality = self.params.quality
        if quality == "auto":
            digits = (cell.dataset.modality == "image"
                      and tuple(cell.dataset.shape) == DIGIT_SHAPE)
            quality = "digits" if digits else "none"
        if quality == "inception":
            return QUALITY["inception"], {"weights": self.params.inception_weights}
        return QUALITY.get(quality, ()), {}

    def _draw(self, cell: CellContext, n: int) -> SampleOutput:
        """`n` samples in calls of at most `sample_batch`, from the cell's one generator."""
        batch = self.params.sample_batch or n
        parts = [cell.sampler.sample(cell.model, cell.dataset, min(batch, n - start),
                                     cell.budget, cell.generator)
                 for start in range(0, n, batch)]
        return SampleOutput(samples=torch.cat([part.samples for part in parts]),
                            nfe=max(part.nfe for part in parts),
                            diagnostics=_pooled_diagnostics(parts))

    def run(self, cell: CellContext) -> TaskOutput:
        if cell.model is None:
            raise Incompatible("unconditional generation needs a model to score the samples")
        drawn = self._draw(cell, self.params.n_samples)
        cell.save_samples(samples=cell.dataset.continuous(drawn.samples))
        metrics = {}
        if implements(cell.model, CausalConditionals):
            with torch.no_grad():
                nll = -cell.model.log_prob(drawn.samples)
            # sample i of one cell is no relative of sample i of another: unpaired
            metrics["sample_nll_bpd"] = cell.metric("sample_nll_bpd").measure(
                nll, cell.dataset.dims).unpaired()
        names, params = self._quality_metrics(cell)
        for name in names:
            metrics[name] = cell.metric(name, **params).measure(drawn.samples, cell.dataset)
        if not metrics:
            raise Incompatible(f"no metric scores these samples on '{cell.dataset.name}': "
                               "no exact model likelihood, no image-feature extractor")
        n = int(drawn.samples.shape[0])
        return TaskOutput(metrics=metrics, nfe=drawn.nfe, extra={"n_samples": n})


def _pooled_diagnostics(parts: list[SampleOutput]) -> dict[str, Any]:
    """The calls' diagnostics as one: a number every call reports is averaged, weighted by
    the call's samples (acceptance, values per call); anything else is the first call's."""
    sizes = [len(part.samples) for part in parts]
    pooled = dict(parts[0].diagnostics)
    for name in pooled:
        values = [part.diagnostics.get(name) for part in parts]
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(numbers) == len(parts):
            pooled[name] = sum(v * size for v, size in zip(numbers, sizes, strict=True)) \
                / sum(sizes)
    return pooled
