"""Anytime sampling: spend a budget of k prior calls on the first k codes, decode the rest as 0.

A model providing ``ordered-codes`` (a VQ-VAE with channel-wise codes plus a
causal prior over them, `arbench_plugins.models.vqvae.model`) generates an image
from its C codes. With a budget of k network calls the prior draws codes 1..k
(one call each), codes k+1..C are replaced by zeros (not by a code), and the
decoder maps them to an image. With ordered codes the first ones carry the
coarse image, so quality degrades gracefully as k falls; unordered codes are
the control.

NFE counts the k prior calls only. The decoder is one extra call per batch,
whatever k, and much cheaper than the prior's; it is not counted (so NFE = k).
A budget of None draws all C codes; a budget above C uses C; below 1 is
`Incompatible`. Samples are levels ``(B, *shape)`` like ancestral sampling's:
the argmax of the decoder's per-pixel categorical (``decode=argmax``, the
default, as the original decodes the mean) or a sample of it (``decode=sample``,
the generative process whose likelihood the model's `log_prob` bounds).

`reconstruct` serves the reconstruction task: the first k codes come from the
encoder instead of the prior (no prior calls), so the error vs k shows how much
of an image each prefix of the code carries.
"""

from __future__ import annotations

from typing import Literal

import torch

from arbench import (
    Condition,
    Dataset,
    Incompatible,
    Model,
    OrderedCodes,
    Param,
    SampleOutput,
    Sampler,
    require,
)

DecodeMode = Literal["argmax", "sample"]
RECONSTRUCT_BATCH = 512


def code_budget(budget: int | None, num_codes: int) -> int:
    """The number of codes k drawn for a budget of network calls."""
    if budget is None:
        return num_codes
    if budget < 1:
        raise Incompatible(f"anytime sampling needs at least 1 network call, not {budget}")
    return min(budget, num_codes)


class Anytime(Sampler):
    class Params(Sampler.Params):
        decode: DecodeMode = Param("argmax", "argmax or sample the decoder's values")

    params: Params

    def sample(
        self,
        model: Model | None,
        dataset: Dataset,
        n: int,
        budget: int | None,
        generator: torch.Generator,
        condition: Condition | None = None,
    ) -> SampleOutput:
        codes_model = require(model, OrderedCodes, "anytime sampling")
        if condition is not None:
            raise Incompatible("anytime sampling here is unconditional")
        k = code_budget(budget, codes_model.num_codes)
        codes = codes_model.prior_sample(n, k, generator)  # k network calls
        samples = codes_model.decode(codes, k, sample=self.params.decode == "sample",
                               generator=generator)
        return SampleOutput(samples=samples.reshape(n, *dataset.shape), nfe=k)

    def reconstruct(self, model: Model | None, x: torch.Tensor, budget: int | None,
                    generator: torch.Generator) -> SampleOutput:
        """Levels of `x` decoded from its own first k codes, the rest zeroed; NFE = 0 prior
        calls (one encoder and one decoder call per batch, whatever k)."""
        codes_model = require(model, OrderedCodes, "reconstruction")
        k = code_budget(budget, codes_model.num_codes)
        decoded = [codes_model.decode(codes_model.encode(chunk), k, generator=generator,
                                sample=self.params.decode == "sample")
                   for chunk in x.split(RECONSTRUCT_BATCH)]
        return SampleOutput(samples=torch.cat(decoded).reshape(x.shape), nfe=0)
