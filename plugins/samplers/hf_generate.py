"""Hugging Face's own decoding as samplers: the field's reference implementation on
arbench's axis (issue 47).

``hf-generate`` is plain sampling through ``model.net.generate`` (``do_sample``, top-k
and top-p off, temperature 1, no stop at EOS, exactly D new tokens from the start
token); ``hf-assisted`` passes a draft model (``assistant_model``, a local folder:
``draft_checkpoint``) proposing exactly ``k`` tokens per target call (its confidence
stop off, a constant schedule), and ``hf-prompt-lookup`` n-gram drafts from the text
so far (``prompt_lookup_num_tokens``). Hugging Face claims each keeps the model's
distribution (``exactness = "distribution"``), which `arbench certify` and the
against-ancestral table put to the test. Calls are counted by arbench through the
model it hands out (each forward of the model's network, by keyword as ``generate``
calls it: one call of each row, its new tokens' positions), the draft's as draft
calls. Assisted generation takes one row at a time (transformers refuses a batch).
``generate`` draws with torch's global generator: each call seeds it from arbench's
`generator` inside `torch.random.fork_rng`, so a seed gives the same samples and the
caller's global state is left as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, cast, runtime_checkable

import torch

from arbench import (
    MAX_POSITIONS,
    Condition,
    Dataset,
    Incompatible,
    LikelihoodOutput,
    Model,
    Param,
    ParameterError,
    SampleOutput,
    Sampler,
    draft_model,
    require,
)
from arbench_plugins.samplers.ancestral import Ancestral
from arbench_plugins.samplers.drafts import load_draft


@runtime_checkable
class Generates(Protocol):
    """A model whose network is a transformers causal LM (the `hf` family): ``net`` has
    ``generate``, ``bos`` is the start token every sample begins after."""

    net: Any
    bos: int


@contextmanager
def seeded(generator: torch.Generator) -> Iterator[None]:
    """torch's global generators seeded from `generator`, restored afterwards."""
    device = generator.device
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type):
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator,
                                            device=device)))
        yield


class HFGenerate(Sampler):
    """Plain sampling through transformers' ``generate``."""

    exactness = "distribution"

    def sample(self, model: Model | None, dataset: Dataset, n: int, budget: int | None,
               generator: torch.Generator, condition: Condition | None = None
               ) -> SampleOutput:
        hf = require(model, Generates, f"{type(self).__name__} (a Hugging Face model)")
        if condition is not None:
            raise Incompatible("Hugging Face's generate samples from the start token only: "
                               "no observed values")
        if budget is not None and budget < dataset.dims:
            raise Incompatible(f"generate makes D={dataset.dims} target calls or fewer only "
                               f"with a draft; budget {budget} is smaller")
        starts = torch.full((n, 1), hf.bos, dtype=torch.long, device=generator.device)
        with torch.no_grad(), seeded(generator):
            rows = [self._generate(hf, start, dataset.dims) for start in self._batches(starts)]
        samples = torch.cat(rows)[:, 1:].reshape(n, *dataset.shape)
        return SampleOutput(samples=samples, nfe=dataset.dims, diagnostics=self._diagnostics())

    def nll(self, model: Model | None, x: torch.Tensor, budget: int | None) -> LikelihoodOutput:
        """The model's exact likelihood, one parallel pass (as ancestral scores)."""
        return Ancestral().nll(model, x, None)

    def _batches(self, starts: torch.Tensor) -> list[torch.Tensor]:
        return [starts]

    def _generate(self, hf: Generates, start: torch.Tensor, new: int) -> torch.Tensor:
        from transformers import GenerationConfig

        config = cast(Any, GenerationConfig)(
            do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=new,
            min_new_tokens=None, eos_token_id=None, pad_token_id=hf.bos,
            **self._options())
        result: torch.Tensor = hf.net.generate(start, generation_config=config,
                                               attention_mask=torch.ones_like(start),
                                               **self._models())
        if result.shape[1] != new + 1:
            raise Incompatible(f"generate returned {result.shape[1] - 1} new tokens, not "
                               f"{new}")
        return result

    def _options(self) -> dict[str, Any]:
        return {}

    def _models(self) -> dict[str, Any]:
        return {}

    def _diagnostics(self) -> dict[str, float]:
        return {}


class Drafted(HFGenerate):
    """``generate`` with at most `k` drafted tokens per target call, one row per call (as
    transformers' candidate generators take)."""

    class Params(HFGenerate.Params):
        k: int = Param(4, "tokens drafted per target call", ge=1, le=MAX_POSITIONS)

    params: Params

    def _batches(self, starts: torch.Tensor) -> list[torch.Tensor]:
        return list(starts.split(1))

    def _diagnostics(self) -> dict[str, float]:
        return {"k": self.params.k}


class HFAssisted(Drafted):
    """``generate`` with a draft model proposing exactly `k` tokens per target call."""

    class Params(Drafted.Params):
        draft_checkpoint: str | None = Param(
            None, "the draft's local Hugging Face folder (its tokenizer: the target's)")

    params: Params

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._drafts: dict[tuple[str, ...], Any] = {}

    def models_used(self) -> dict[str, dict[str, Any]]:
        """The draft folder, as an `hf` model's checkpoint (none: the target's own draft)."""
        checkpoint = self.params.draft_checkpoint
        return {"hf": {"checkpoint": checkpoint}} if checkpoint else {}

    def sample(self, model: Model | None, dataset: Dataset, n: int, budget: int | None,
               generator: torch.Generator, condition: Condition | None = None
               ) -> SampleOutput:
        require(model, Generates, f"{type(self).__name__} (a Hugging Face model)")
        self._draft = self._draft_of(model, dataset, generator.device)
        return super().sample(model, dataset, n, budget, generator, condition)

    def _draft_of(self, model: Model | None, dataset: Dataset, device: torch.device) -> Any:
        """The draft folder's model, loaded once, else the target's own draft (the shipped
        pair's, a certificate's random one), counted as a draft either way."""
        if self.params.draft_checkpoint is None:
            draft = getattr(model, "draft", None)
            if draft is None:
                raise ParameterError(f"{type(self).__name__} needs a draft: --set "
                                     "hf-assisted.draft_checkpoint=DIR (a folder with the "
                                     "target's tokenizer)")
            return draft_model(draft)
        key = (dataset.name, str(device), self.params.draft_checkpoint)
        if key not in self._drafts:
            self._drafts[key] = load_draft(
                "hf", dataset, device, list(range(dataset.dims)), self.models_used()["hf"],
                "hf-assisted.draft_checkpoint").model
        return self._drafts[key]

    def _models(self) -> dict[str, Any]:
        # transformers reads these from the assistant's own generation config, not the call's
        config = self._draft.net.generation_config
        config.num_assistant_tokens, config.num_assistant_tokens_schedule = self.params.k, \
            "constant"
        config.assistant_confidence_threshold = 0.0
        return {"assistant_model": self._draft.net}


class HFPromptLookup(Drafted):
    """``generate`` with n-gram drafts from the text so far (prompt lookup)."""

    class Params(Drafted.Params):
        max_ngram: int = Param(2, "the longest n-gram matched", ge=1)

    params: Params

    def _options(self) -> dict[str, Any]:
        return {"prompt_lookup_num_tokens": self.params.k,
                "max_matching_ngram_size": self.params.max_ngram}
