"""Density estimation: NLL of the test split under the sampler's generative process.

For an exact autoregressive model every sampler scores the same likelihood;
samplers with a step budget (ARDM's parallel policies) score the ELBO of the
budgeted process, so the table shows what the budget costs in bits/dim.
"""

from __future__ import annotations

from arbench.contracts import CellContext, Task, TaskOutput


class Density(Task):
    defaults = {"max_examples": None}

    def run(self, cell: CellContext) -> TaskOutput:
        x = cell.dataset.load("test")
        if self.params["max_examples"] is not None:
            x = x[: self.params["max_examples"]]
        scored = cell.sampler.nll(cell.model, x.to(cell.device), cell.budget)
        bpd = cell.metric("nll_bpd")(scored.nll_nats, cell.dataset.dims)
        return TaskOutput(metrics={"nll_bpd": bpd}, nfe=scored.nfe,
                          extra={"examples": int(x.shape[0])})
