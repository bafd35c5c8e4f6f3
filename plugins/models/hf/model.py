"""`hf`: a Hugging Face causal language model from a local folder, as an arbench model.

``--set hf.path=DIR`` names a folder written by ``save_pretrained`` (GPT-2, Llama, Qwen,
Mistral: any architecture transformers ships with a ...ForCausalLM head); without it,
the shipped pair (``checkpoints/hf-text``, trained by `arbench train hf`, its draft in
``draft/``, a folder's default draft wherever it has one). A folder is opened by
`arbench_plugins.models.hf.folder` (local files only, no code from the folder). The
model reads a text dataset through its own tokenizer (`data_view`: examples of
``hf.length`` tokens), so values are token ids and bits per dimension are bits per
token. Position 0 is conditioned on the model's start token (BOS, else EOS). It gives
arbench's samplers causal logits (one pass over every position) and an incremental
cache with a window (`HFCache`: the model's own key/value cache, cropped on
rejection), so ancestral, Jacobi, speculative and speculative-Jacobi sampling run on
it with their calls counted through it like any model's. As a speculative draft
(``--set speculative.draft=hf``, with ``speculative.draft_checkpoint=DIR`` or the shipped
draft) it reads the target's view, so its tokenizer must give the target's ids.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any, Literal

import torch

from arbench import CheckpointError, Dataset, Incompatible, Logits, Model, Param, shipped_dir
from arbench_plugins.models.hf.cache import HFCache
from arbench_plugins.models.hf.folder import folder_sha256, open_folder
from arbench_plugins.models.hf.tokenized import TokenizedText, tokenized
from arbench_plugins.models.hf.training import logits, train

DRAFT = "draft"  # a target folder's subfolder holding its default draft
_DRAFTS: weakref.WeakKeyDictionary[HuggingFace, HuggingFace] = weakref.WeakKeyDictionary()


class HuggingFace(Logits, Model):
    """A local transformers causal LM over a text dataset's tokens."""

    # transformers-generate: its network has `generate` (the hf-* samplers drive it)
    provides = frozenset({"causal-logits", "causal-conditionals", "transformers-generate"})

    class Params(Model.Params):
        path: str | None = Param(None, "a local folder written by save_pretrained (config, "
                                       "safetensors weights, tokenizer)")
        dtype: Literal["float32", "bfloat16", "float16"] = Param(
            "float32", "the weights' dtype (logits are returned in float32)")
        length: int = Param(32, "tokens per example of the text the model reads", ge=2)
        temperature: float = Param(1.0, "the distribution sampled: logits divided by it; "
                                        "0: greedy (the most likely token)", ge=0)

    params: Params

    def __init__(self, net: Any, bos: int, view: Dataset, draft: HuggingFace | None = None,
                 **params: Any) -> None:
        """`net` reads `view` (token ids, ``view.shape[0]`` per example) after start token
        `bos`; `draft` is the model hf-assisted drafts with when given none."""
        super().__init__(**params)
        self.net, self.bos, self.view = net, bos, view
        if draft is not None:
            _DRAFTS[self] = draft
        self.levels, self.length = int(net.config.vocab_size), view.shape[0]
        if view.num_levels != self.levels:
            raise Incompatible(f"this model's logits have {self.levels} levels, the "
                               f"target's {view.num_levels}: a draft needs the target's "
                               "vocabulary size")
        positions = context_of(net)
        if positions is not None and self.length > positions:
            raise Incompatible(f"hf.length={self.length} is past the model's {positions} "
                               "positions: lower hf.length")
        # an example is `length` tokens: generate (hf-* samplers, a draft inside them)
        # must not stop at EOS, which it would fill from here when asked for none
        net.generation_config.eos_token_id = None
        net.generation_config.pad_token_id = bos
        self.temperature = self.params.temperature

    @property
    def draft(self) -> HuggingFace | None:
        """The model hf-assisted drafts with when given no folder (the folder's
        ``draft/``), or None. Kept outside the instance: arbench counts every module a
        model holds as the model's calls, and a draft's are the draft's."""
        return _DRAFTS.get(self)

    def data_view(self, dataset: Dataset) -> Dataset:
        """The text as token ids of this model's tokenizer, `length` per example (the
        prompts of a prompts dataset): the view it was loaded with, or the same for
        another configuration of the data (a prompts file's category)."""
        if not isinstance(self.view, TokenizedText) or dataset is self.view.base:
            return self.view
        view = tokenized(dataset, self.view.tokenizer, self.length, self.levels,
                         context_of(self.net))
        view.temperature = self.temperature
        return view

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.tempered(logits(self.net, x.reshape(len(x), -1), self.bos))

    def incremental(self, n: int) -> HFCache:
        return HFCache(self.net, n, self.bos, self.tempered)

    def tempered(self, logits: torch.Tensor) -> torch.Tensor:
        """The network's logits at this model's temperature (at 0: 0 at the most likely
        token, -inf elsewhere)."""
        if self.temperature == 1:
            return logits
        if self.temperature == 0:
            return torch.full_like(logits, -torch.inf).scatter_(
                -1, logits.argmax(-1, keepdim=True), 0.0)
        return logits / self.temperature

    @classmethod
    def load(cls, dataset: Dataset, device: torch.device, *, family: str,
             checkpoint: Path | None, **params: Any) -> HuggingFace:
        if checkpoint is None:
            raise CheckpointError(f"{family} needs a model folder: --set {family}.path=DIR")
        if isinstance(dataset, TokenizedText) and checkpoint == cls.shipped_checkpoint(
                dataset.name, family=family):  # a draft given no folder: the shipped draft
            checkpoint = checkpoint / DRAFT
        net, tokenizer = open_folder(checkpoint, params.get("dtype", "float32"), device,
                                     f"{family}.path")
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else \
            tokenizer.eos_token_id
        if start is None:
            raise Incompatible("the model's tokenizer has no BOS or EOS token to start from")
        if isinstance(dataset, TokenizedText):  # a draft reads the target's tokens
            if not dataset.matches(tokenizer):
                raise Incompatible("this model's tokenizer differs from the target's: a draft "
                                   "must give the same token ids (one trained with the "
                                   "target's tokenizer)")
            view = dataset
        else:
            view = tokenized(dataset, tokenizer, params.get("length", 32),
                             int(net.config.vocab_size), context_of(net))
            view.temperature = params.get("temperature", 1.0)
        draft = None
        if (checkpoint / DRAFT / "config.json").is_file():  # the folder's own, as drafts load
            draft = cls.load(view, device, family=family, checkpoint=checkpoint / DRAFT,
                             dtype=params.get("dtype", "float32"))
        if view is dataset:  # a draft samples at its target's temperature
            params.setdefault("temperature", view.temperature)
        return cls(net, int(start), view, draft=draft, **params)

    @classmethod
    def enumerable(cls, dataset: Dataset, seed: int) -> HuggingFace | None:
        """A random GPT-2 of one layer over `dataset`'s values and levels (start token:
        level 0), with another as its draft; None without transformers."""
        try:
            from transformers import GPT2Config, GPT2LMHeadModel
        except ImportError:
            return None
        levels = int(dataset.num_levels or 0)

        def gpt2(offset: int) -> Any:
            torch.manual_seed(seed + offset)  # transformers initialises from the global RNG
            config = GPT2Config(vocab_size=levels, n_positions=dataset.dims + 1, n_embd=8,
                                n_layer=1, n_head=2, initializer_range=1.0,
                                bos_token_id=0, eos_token_id=0)
            net: Any = GPT2LMHeadModel(config)
            return net.eval()

        with torch.random.fork_rng(devices=[]):
            target, draft = gpt2(0), gpt2(1)
        return cls(target, 0, dataset, draft=cls(draft, 0, dataset))

    @classmethod
    def shipped_checkpoint(cls, dataset_name: str, *, family: str, **params: Any
                           ) -> Path | None:
        """The folder ``path`` names, else the shipped pair's (`hf-text`: a small GPT-2
        trained on the embedded text, its draft in ``draft/``), which reads any text."""
        path = params.get("path")
        if path is None:
            return shipped_dir(cls) / f"{family}-text"
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise CheckpointError(f"{family}.path={folder}: no such folder; give a folder "
                                  "written by save_pretrained (config.json, safetensors "
                                  "weights, tokenizer)")
        return folder

    @classmethod
    def checkpoint_sha256(cls, folder: Path | None, dataset_name: str, /, *, family: str,
                          **params: Any) -> str:
        """The folder's files' hash (its ``path`` is a parameter too): a record is current
        only for the same weights, config and tokenizer."""
        return folder_sha256(folder) if folder is not None and folder.is_dir() else ""

    @classmethod
    def train(cls, dataset: Dataset, out: Path, seed: int = 0, *, family: str,
              **options: Any) -> Path:
        """A GPT-2-format target or draft on the dataset's text (`training`)."""
        return train(dataset, out, seed, family, options)


def context_of(net: Any) -> int | None:
    """How many positions the network reads (None: its config does not say)."""
    positions = getattr(net.config, "max_position_embeddings", None) or getattr(
        net.config, "n_positions", None)
    return int(positions) if positions is not None else None
