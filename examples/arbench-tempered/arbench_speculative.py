"""Speculative sampling with the data's marginals as its draft: the example package's
draft-and-verify sampler, whose claim of the model's distribution `arbench certify
speculative-marginals` tests.

Leviathan et al. (2023). The draft is each position's distribution in the training
split, handed to `arbench.draft_model`, so arbench counts its calls (`draft_nfe`); the
sampler reports its acceptance and `k`, from which arbench checks the values per target
call it counts (MAT) are possible.
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
    draft_model,
    hookimpl,
    require,
)


class Marginals:
    """A draft that knows only each position's distribution in the training data."""

    def __init__(self, dataset: Dataset, device: torch.device) -> None:
        if dataset.num_levels is None:
            raise Incompatible("speculative-marginals drafts discrete levels")
        train = dataset.load("train").reshape(-1, dataset.dims).long()
        counts = torch.nn.functional.one_hot(train, dataset.num_levels).sum(0) + 0.5
        self.log_frequencies = counts.log().to(device)  # (D, K)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_frequencies.expand(len(x), -1, -1)


class SpeculativeMarginals(Sampler):
    """Draft k values from the marginals, keep each with probability min(1, p / q) in order,
    redraw the first rejected one from max(0, p - q), or draw one more from p when all k
    are kept: every value follows the model's conditionals. Each row stands at its own
    position; one target call verifies every unfinished row."""

    exactness = "distribution"

    class Params(Sampler.Params):
        k: int = Param(4, "values drafted per target call", ge=1)

    params: Params

    @torch.no_grad()
    def sample(self, model: Model | None, dataset: Dataset, n: int, budget: int | None,
               generator: torch.Generator, condition: Condition | None = None) -> SampleOutput:
        causal = require(model, CausalLogits, "speculative-marginals")
        dims, k, device = dataset.dims, self.params.k, generator.device
        if condition is not None or (budget is not None and budget < dims):
            raise Incompatible(f"speculative-marginals draws unconditionally, in up to {dims} "
                               "calls")
        draft = draft_model(Marginals(dataset, device))  # arbench counts its calls
        x = torch.zeros(n, dims, dtype=torch.long, device=device)
        t = torch.zeros(n, dtype=torch.long, device=device)  # each row's next position
        calls, drafted, kept = torch.zeros(n, device=device), 0, 0
        while bool((active := t < dims).any()):
            rows, steps = active.nonzero()[:, 0], torch.arange(k + 1, device=device)
            ahead = t[rows, None] + steps  # (B, k + 1): the k drafted positions and one more
            where, valid = ahead.clamp(max=dims - 1), ahead[:, :k] < dims
            q = _at(draft.logits(x[rows]).softmax(-1), where[:, :k])  # (B, k, K)
            proposal = torch.multinomial(q.flatten(0, 1), 1, generator=generator).view(-1, k)
            candidate = x[rows].scatter(1, where[:, :k], proposal)
            p = _at(causal.logits(candidate.view(-1, *dataset.shape)).softmax(-1), where)
            ratio = p[:, :k].gather(2, proposal[..., None]) / q.gather(2, proposal[..., None])
            uniform = torch.rand(len(rows), k, generator=generator, device=device)
            accepted = ((uniform < ratio[..., 0]) & valid).long().cumprod(1).sum(1)  # (B,)
            rejected = accepted < valid.sum(1)
            row, first = torch.arange(len(rows), device=device), accepted.clamp(max=k - 1)
            residual = (p[row, first] - q[row, first]).clamp(min=0)
            weights = torch.where(rejected[:, None], residual, p[row, accepted])
            value = torch.multinomial(weights, 1, generator=generator)[:, 0]
            kept_row, kept_step = ((steps[:k] < accepted[:, None]) & valid).nonzero(as_tuple=True)
            x[rows[kept_row], ahead[kept_row, kept_step]] = proposal[kept_row, kept_step]
            last = t[rows] + accepted
            inside = last < dims
            x[rows[inside], last[inside]] = value[inside]
            t[rows] = last + 1
            calls[rows] += 1
            drafted, kept = drafted + int(valid.sum()), kept + int(accepted.sum())
        return SampleOutput(samples=x.view(n, *dataset.shape), nfe=int(calls.mean().ceil()),
                            diagnostics={"acceptance": kept / max(drafted, 1), "k": k})


def _at(probabilities: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """``(B, W, K)``: each row's probabilities ``(B, D, K)`` at its positions ``(B, W)``."""
    return probabilities.gather(1, where[..., None].expand(-1, -1, probabilities.shape[-1]))


@hookimpl
def arbench_samplers() -> list[SamplerSpec]:
    return [
        SamplerSpec(
            name="speculative-marginals",
            factory=SpeculativeMarginals,
            description="Speculative sampling with the data's marginals as draft (example)",
            requires=frozenset({"causal-logits"}),
            serves=frozenset({"unconditional"}),
        ),
    ]
