"""Reconstruction vs code length: how much of an image the first k codes carry.

The anytime paper's check that codes are ordered: encode held-out images, keep
their first k codes (k from the budget, as in anytime sampling), zero the rest,
decode, and score against the originals. Ordered codes lose little when the
tail is dropped; unordered codes decode a truncated code to little of the image.
The sampler does the encoding and decoding (`reconstruct`), so a third-party
code model is scored the same way. NFE is 0: no prior call is made, and the
encoder and decoder run once per batch whatever k is; the table's columns are
budgets (codes kept).
"""

from __future__ import annotations

from arbench import CellContext, Incompatible, Param, Reconstructs, Task, TaskOutput
from arbench_plugins.tasks.common import HeldOut


class Reconstruction(Task):
    """`n_examples`: test images scored (None: the whole test split)."""

    class Params(HeldOut):
        n_examples: int | None = Param(None, "held-out examples encoded (None: all)", ge=1)

    params: Params

    def run(self, cell: CellContext) -> TaskOutput:
        if not isinstance(cell.sampler, Reconstructs):
            raise Incompatible("this sampler cannot reconstruct from a truncated code (it has "
                               "no reconstruct method)")
        if cell.dataset.num_levels is None:
            raise Incompatible(f"dataset '{cell.dataset.name}' is continuous; codes need levels")
        x = cell.dataset.load(self.params.split)[: self.params.n_examples].to(cell.device)
        decoded = cell.sampler.reconstruct(cell.model, x, cell.budget, cell.generator)
        estimate, truth = cell.dataset.continuous(decoded.samples), cell.dataset.continuous(x)
        cell.save_samples(estimate=estimate[:64], reference=truth[:64])
        metrics = {name: cell.metric(name).measure(estimate, truth) for name in ("mse", "psnr_db")}
        return TaskOutput(metrics=metrics, nfe=decoded.nfe,
                          extra={"n_examples": int(x.shape[0])})
