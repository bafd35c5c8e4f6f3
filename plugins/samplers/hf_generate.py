"""Hugging Face's own decoding as samplers: the field's reference implementation on
arbench's axis (issue 47).

``hf-generate`` is plain sampling through ``model.net.generate`` (``do_sample``, top-k
and top-p off, the model's temperature, greedy at 0; no stop at EOS, exactly D new
tokens from the start token, or after a prompt: the first observed positions);
``hf-assisted`` passes a draft model (``assistant_model``, a local folder:
``draft_checkpoint``) proposing exactly ``k`` tokens per target call (its confidence
stop off, a constant schedule), and ``hf-prompt-lookup`` n-gram drafts from the text
so far (``prompt_lookup_num_tokens``). Hugging Face claims each keeps the model's
distribution (``exactness = "distribution"``), which `arbench certify` and the
against-ancestral table put to the test. Calls are counted by arbench through the
model it hands out (each forward of the model's network, by keyword as ``generate``
calls it: one call of each row, its new tokens' positions), the draft's as draft
calls. Assisted generation takes one row at a time (transformers refuses a batch);
transformers reports no acceptance, so the drafted samplers read it off the target's
calls (`Drafted._count`: what each computed beyond its cache, and how far the next
one's cache reaches), counting as arbench's speculative sampling counts.
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
from arbench_plugins.samplers.ancestral import Ancestral, prompt_of
from arbench_plugins.samplers.drafts import load_draft


@runtime_checkable
class Generates(Protocol):
    """A model whose network is a transformers causal LM (the `hf` family): ``net`` has
    ``generate``, ``bos`` is the start token every sample begins after."""

    net: Any
    bos: int
    temperature: float


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
        prompt = torch.zeros(n, 0, dtype=torch.long, device=generator.device)
        if condition is not None:  # a prompt: generate continues it
            given, start = prompt_of(type(self).__name__, dataset, n, condition)
            prompt = given[:, :start]
        new = dataset.dims - prompt.shape[1]
        if budget is not None and budget < new:
            raise Incompatible(f"generate makes {new} target calls or fewer only with a "
                               f"draft; budget {budget} is smaller")
        starts = torch.cat([prompt.new_full((n, 1), hf.bos), prompt], 1)
        self._tally = [0, 0]  # drafted values checked, and kept, by this call's rows
        with torch.no_grad(), seeded(generator):
            rows = [self._generate(hf, start, new) for start in self._batches(starts)]
        samples = torch.cat(rows)[:, 1:].reshape(n, *dataset.shape)
        if condition is not None:
            samples = dataset.continuous(samples)
        return SampleOutput(samples=samples, nfe=new, diagnostics=self._diagnostics())

    def nll(self, model: Model | None, x: torch.Tensor, budget: int | None) -> LikelihoodOutput:
        """The model's exact likelihood, one parallel pass (as ancestral scores)."""
        return Ancestral().nll(model, x, None)

    def _batches(self, starts: torch.Tensor) -> list[torch.Tensor]:
        return [starts]

    def _generate(self, hf: Generates, start: torch.Tensor, new: int) -> torch.Tensor:
        from transformers import GenerationConfig

        sampled = hf.temperature > 0  # else greedy
        config = cast(Any, GenerationConfig)(
            do_sample=sampled, temperature=hf.temperature if sampled else None,
            top_k=0 if sampled else None, top_p=1.0 if sampled else None, max_new_tokens=new,
            min_new_tokens=None, eos_token_id=None, pad_token_id=hf.bos,
            **self._options())
        result: torch.Tensor = hf.net.generate(start, generation_config=config,
                                               attention_mask=torch.ones_like(start),
                                               **self._models())
        if result.shape[1] != start.shape[1] + new:
            raise Incompatible(f"generate returned {result.shape[1] - start.shape[1]} new "
                               f"tokens, not {new}")
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

    def _generate(self, hf: Generates, start: torch.Tensor, new: int) -> torch.Tensor:
        """One row, its target calls watched: what each computed and what its cache held."""
        calls: list[tuple[int, int]] = []

        def watch(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
            cache = kwargs.get("past_key_values", kwargs.get("cache"))
            held = int(cache.get_seq_length()) if cache is not None else 0
            calls.append((held, int(kwargs["input_ids"].shape[1])))

        handle = hf.net.register_forward_pre_hook(watch, with_kwargs=True)
        try:
            result = super()._generate(hf, start, new)
        finally:
            handle.remove()
        self._count(calls, start.shape[1], result.shape[1])
        return result

    def _count(self, calls: list[tuple[int, int]], prompt: int, final: int) -> None:
        """Add a row's drafted values checked (up to and including each call's first
        rejection) and kept, from its target calls: a call computes the tokens its cache
        lacks and the drafted ones after them, and the next call's cache holds every token
        kept but the newest (the last call: the row's final length)."""
        length = prompt  # the row's tokens before a call
        after = [held + 1 for held, _ in calls[1:]] + [final]
        for (held, width), grown in zip(calls, after, strict=True):
            drafted, kept = width - (length - held), grown - length - 1
            self._tally[0] += min(kept + 1, drafted)
            self._tally[1] += min(kept, drafted)
            length = grown

    def _diagnostics(self) -> dict[str, float]:
        checked, kept = self._tally
        return {"k": self.params.k, **({"acceptance": kept / checked} if checked else {})}


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
