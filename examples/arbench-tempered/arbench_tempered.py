"""Ancestral sampling at a temperature: the complete third-party sampler example.

One module, one entry point (see pyproject.toml). With temperature 1 it is
exact ancestral sampling; below 1 it trades diversity for typicality, which
the `unconditional` task shows as a lower sample NLL.
"""

import torch

from arbench import (
    CausalLogits,
    Condition,
    Dataset,
    Incompatible,
    Model,
    Param,
    SampleOutput,
    Sampler,
    SamplerSpec,
    hookimpl,
    require,
)


class Tempered(Sampler):
    class Params(Sampler.Params):
        temperature: float = Param(0.8, "softmax temperature: 1 is ancestral sampling, "
                                        "near 0 greedy, above 10 near uniform", gt=0, le=100)

    params: Params

    @torch.no_grad()
    def sample(self, model: Model | None, dataset: Dataset, n: int, budget: int | None,
               generator: torch.Generator, condition: Condition | None = None) -> SampleOutput:
        causal = require(model, CausalLogits, "tempered")  # Incompatible if it has no logits
        dims = dataset.dims
        if budget is not None and budget < dims:
            raise Incompatible(f"tempered sampling needs {dims} network calls, budget is {budget}")
        x = torch.zeros((n, *dataset.shape), dtype=torch.long, device=generator.device)
        flat = x.view(n, -1)
        for i in range(dims):
            logits = causal.logits(x)[:, i] / self.params.temperature
            flat[:, i] = torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1)
        return SampleOutput(samples=x, nfe=dims)


@hookimpl
def arbench_samplers() -> list[SamplerSpec]:
    return [
        SamplerSpec(
            name="tempered",
            factory=Tempered,
            description="Ancestral sampling with softmax temperature (example plugin)",
            requires=frozenset({"causal-logits"}),
            serves=frozenset({"unconditional"}),
        )
    ]
