"""Continuation: draw `max_new_tokens` after each prompt, one prompt per sampler call.

What LLM decoding benchmarks (Spec-Bench) measure: batch 1, each prompt continued by the
sampler, the cost per new token timed against the reference (cached ancestral sampling,
from the same prompt). The dataset gives the prompts as token ids (``prompts`` through a
model's tokenizer: `arbench_plugins.models.hf.tokenized.TokenizedPrompts`); the sampler
gets a prompt as observed values (`Observed`, the first P positions), so every sampler
that conditions on observed values continues it, and those that draw after a prefix
(ancestral, speculative, the hf-* samplers) compute the prompt in their first call. A
prompt longer than the model's positions leave room for keeps its last tokens (the
record's ``prompts_cut`` counts them). Scored by the continuations' NLL under the model in
bits per new token: a sampler that keeps the model's distribution gives the reference's.
"""

from __future__ import annotations

from typing import Any

import torch

from arbench import (
    CausalLogits,
    CellContext,
    Dataset,
    Incompatible,
    Observed,
    Param,
    Task,
    TaskOutput,
    implements,
)


class Continuation(Task):
    class Params(Task.Params):
        max_new_tokens: int = Param(32, "tokens drawn after each prompt", ge=1)
        n_prompts: int | None = Param(None, "continue only the first N prompts (None: all)",
                                      ge=1)

    params: Params

    def run(self, cell: CellContext) -> TaskOutput:
        view: Any = cell.dataset
        if not (callable(getattr(view, "prompts", None))
                and callable(getattr(view, "with_length", None))):
            raise Incompatible("continuation continues prompts read through a model's "
                               "tokenizer: --dataset prompts --model hf")
        new, context = self.params.max_new_tokens, getattr(view, "context", None)
        if context is not None and new >= context:
            raise Incompatible(f"max_new_tokens={new} leaves no room for a prompt in the "
                               f"model's {context} positions: lower it")
        prompts = view.prompts("test")[:self.params.n_prompts]
        nll, nfe, cut = [], 0, 0
        for prompt in prompts:
            ids = prompt.ids
            if context is not None and len(ids) + new > context:
                ids, cut = ids[len(ids) + new - context:], cut + 1
            tokens, calls = self._continue(cell, view.with_length(len(ids) + new), ids)
            nfe = max(nfe, calls)
            if implements(cell.model, CausalLogits):
                nll.append(continuation_nll(cell.model, tokens, len(ids)))
        if not nll:
            raise Incompatible("no metric scores continuations without a model's logits")
        metrics = {"sample_nll_bpd": cell.metric("sample_nll_bpd").measure(
            torch.cat(nll), new).unpaired()}
        return TaskOutput(metrics=metrics, nfe=nfe,
                          extra={"n_prompts": len(prompts), "prompts_cut": cut,
                                 "max_new_tokens": new})

    @staticmethod
    def _continue(cell: CellContext, each: Dataset, ids: torch.Tensor
                  ) -> tuple[torch.Tensor, int]:
        """The prompt `ids` and the sampler's continuation ``(1, P + new)``, and its NFE."""
        observed = torch.zeros(1, each.dims, dtype=torch.bool, device=cell.device)
        observed[0, :len(ids)] = True
        values = torch.zeros(1, each.dims, dtype=torch.long, device=cell.device)
        values[0, :len(ids)] = ids.to(cell.device)
        drawn = cell.sampler.sample(cell.model, each, 1, cell.budget, cell.generator,
                                    condition=Observed(observed, each.continuous(values)))
        levels = int(each.num_levels or 0)  # level k of K sits at -1 + 2k / (K - 1)
        tokens = ((drawn.samples.reshape(1, -1) + 1) * (levels - 1) / 2).round().long()
        return tokens, drawn.nfe


def continuation_nll(model: CausalLogits, tokens: torch.Tensor, prompt: int) -> torch.Tensor:
    """-log p(continuation | prompt) in nats per row of `tokens` ``(n, P + new)``."""
    with torch.no_grad():
        logp = model.logits(tokens).float().log_softmax(-1)
        picked = logp.gather(-1, tokens[..., None])[..., 0]
    return -picked[:, prompt:].double().sum(1)
