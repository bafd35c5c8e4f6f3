"""A text dataset as a Hugging Face model reads it: its tokenizer's ids, in examples of
`length` tokens (`TokenizedText`), or a prompts dataset's prompts as ids to continue
(`TokenizedPrompts`); `tokenized` picks which.

Each split's text (the dataset's ``text(split)``: its examples joined in order) is
tokenized once, without special tokens, and cut into non-overlapping examples of
`length` tokens, the short tail dropped. Values are token ids (``num_levels``: the
model's vocabulary), so bits per dimension are bits per token; `byte_counts` gives each
example's UTF-8 bytes, which per-byte figures divide by (they compare across
tokenizers). A draft reads the target's view: `matches` says whether its tokenizer
gives the same ids.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch

from arbench import Dataset, Incompatible


class TokenizedText(Dataset):
    """`base`'s text through `tokenizer`, `length` tokens per example."""

    temperature: float = 1.0  # the target's, which a draft reading this view samples at

    modality = "text"

    def __init__(self, base: Dataset, tokenizer: Any, length: int, levels: int) -> None:
        super().__init__()
        if not callable(getattr(base, "text", None)):
            raise Incompatible(f"a Hugging Face model reads text through its tokenizer; "
                               f"'{base.name}' has no text (modality {base.modality})")
        self.base, self.tokenizer = base, tokenizer
        self.name, self.shape, self.num_levels = base.name, (length,), levels
        self._splits: dict[str, torch.Tensor] = {}

    def load(self, split: str) -> torch.Tensor:
        self.check_split(split)
        if split not in self._splits:
            text = self.base.text(split)  # type: ignore[attr-defined]
            ids = torch.tensor(self.tokenizer(text, add_special_tokens=False,
                                              verbose=False)["input_ids"], dtype=torch.long)
            count = len(ids) // self.shape[0]
            if not count:
                raise Incompatible(f"'{self.name}' {split} has {len(ids)} tokens, fewer than "
                                   f"one example of {self.shape[0]}: lower hf.length")
            self._splits[split] = ids[:count * self.shape[0]].view(count, self.shape[0])
        return self._splits[split].clone()

    def byte_counts(self, x: torch.Tensor) -> torch.Tensor:
        """UTF-8 bytes of each example of token ids ``(N, length)``, ``(N,)``."""
        return torch.tensor([len(self.tokenizer.decode(row).encode()) for row in x.tolist()])

    @cached_property
    def vocabulary(self) -> dict[str, int]:
        result: dict[str, int] = self.tokenizer.get_vocab()
        return result

    def matches(self, tokenizer: Any) -> bool:
        """Whether `tokenizer` maps text to the same ids (the same vocabulary)."""
        return bool(self.vocabulary == tokenizer.get_vocab())


@dataclass(frozen=True)
class TokenizedPrompt:
    """A prompt as token ids ``(P,)``, with its id and category in the file."""

    question_id: str
    category: str
    ids: torch.Tensor


class TokenizedPrompts(TokenizedText):
    """`base`'s prompts through `tokenizer`. An example is one continuation: `with_length`
    gives the view whose examples are a prompt and its new tokens; `context` is how many
    positions the model reads (None: no limit), which a prompt and its continuation share."""

    def __init__(self, base: Dataset, tokenizer: Any, length: int, levels: int,
                 context: int | None) -> None:
        Dataset.__init__(self)
        self.base, self.tokenizer, self.context = base, tokenizer, context
        self.name, self.shape, self.num_levels = base.name, (length,), levels

    def prompts(self, split: str) -> list[TokenizedPrompt]:
        """The prompts of `split`, each tokenized without special tokens."""
        return [TokenizedPrompt(entry.question_id, entry.category, torch.tensor(
                    self.tokenizer(entry.text, add_special_tokens=False,
                                   verbose=False)["input_ids"], dtype=torch.long))
                for entry in self.base.prompts(split)]  # type: ignore[attr-defined]

    def with_length(self, length: int) -> TokenizedPrompts:
        """This view with examples of `length` tokens (a prompt and its continuation)."""
        view = copy.copy(self)
        view.shape = (length,)
        return view

    def load(self, split: str) -> torch.Tensor:
        return self.base.load(split)


def tokenized(base: Dataset, tokenizer: Any, length: int, levels: int,
              context: int | None) -> TokenizedText:
    """`base` through `tokenizer`: its prompts when it has some, else its text."""
    if callable(getattr(base, "prompts", None)):
        return TokenizedPrompts(base, tokenizer, length, levels, context)
    return TokenizedText(base, tokenizer, length, levels)
