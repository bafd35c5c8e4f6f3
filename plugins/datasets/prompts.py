"""`prompts`: prompts to continue, read from a Spec-Bench question file (``--data-file F``).

Spec-Bench (Xia et al., 2024) ships its 480 prompts in 13 categories as JSON Lines, one
object per line with ``question_id``, ``category`` and ``turns`` (a list of strings: the
user's turns, MT-bench's two or one); other fields are ignored. arbench continues the
first turn, as it stands: no chat template, since one belongs to a model and a folder's
template is code-like data arbench does not run. Every prompt is a test example (the
file has no train or validation split). ``category`` picks one category; by default a
grid runs a cell per category and one over ``all`` (`variants`), so tables show each
category's row and the overall one. The prompts are text: a model with a tokenizer
(``--model hf``) reads them as token ids (its `data_view`), and the ``continuation``
task draws ``max_new_tokens`` after each.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch

from arbench import Dataset, Incompatible, Param

ALL = "all"  # the category value that keeps every prompt


@dataclass(frozen=True)
class PromptEntry:
    """One prompt: its id and category in the file, and its text (the first turn)."""

    question_id: str
    category: str
    text: str


def _file(data_file: str | None) -> Path:
    if data_file is None:
        raise ValueError("prompts needs a question file in Spec-Bench's format (JSON Lines "
                         "with question_id, category and turns): pass --data-file F.jsonl "
                         "or --set prompts.data_file=F.jsonl")
    path = Path(data_file).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"prompts: no file {path}; give Spec-Bench's question.jsonl "
                                "or a file in its format")
    return path


def read_prompts(data_file: str | None) -> tuple[PromptEntry, ...]:
    """Every prompt of the file, in its order, or a ValueError naming the bad line."""
    path = _file(data_file)
    stat = path.stat()
    return _parsed(path.resolve(), stat.st_size, stat.st_mtime_ns)


@cache
def _parsed(path: Path, size: int, mtime_ns: int) -> tuple[PromptEntry, ...]:
    """The file's prompts (size and modification time key the cache)."""
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: not JSON ({error.msg})") from None
        turns = item.get("turns") if isinstance(item, dict) else None
        if not (isinstance(turns, list) and turns and isinstance(turns[0], str)):
            raise ValueError(f"{where}: needs 'turns', a list of strings (Spec-Bench's "
                             "format: question_id, category, turns)")
        if "question_id" not in item or not isinstance(item.get("category"), str):
            raise ValueError(f"{where}: needs 'question_id' and a 'category' string")
        entries.append(PromptEntry(str(item["question_id"]), item["category"], turns[0]))
    if not entries:
        raise ValueError(f"{path} holds no prompts")
    return tuple(entries)


class Prompts(Dataset):
    """A Spec-Bench question file's first turns; every prompt is a test example."""

    name = "prompts"
    modality = "text"

    class Params(Dataset.Params):
        data_file: str | None = Param(None, "Spec-Bench's question.jsonl, or a file in its "
                                            "format (question_id, category, turns)")
        category: str = Param(ALL, "the category continued, or all of them")

    params: Params

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        entries = read_prompts(self.params.data_file)
        category = self.params.category
        if category != ALL and category not in {entry.category for entry in entries}:
            raise ValueError(f"prompts: no category {category!r} in {self.params.data_file}; "
                             f"it has {', '.join(sorted({e.category for e in entries}))}")
        self.entries = [e for e in entries if category in (ALL, e.category)]

    @classmethod
    def variants(cls, params: Mapping[str, Any]) -> dict[str, list[Any]]:
        """Every category of the file, and all of them: a table row each."""
        categories = sorted({entry.category for entry in read_prompts(params.get("data_file"))})
        return {"category": [ALL, *categories]}

    def prompts(self, split: str) -> list[PromptEntry]:
        """The prompts of `split`: all of them in test, none elsewhere."""
        self.check_split(split)
        if split != "test":
            raise Incompatible(f"a prompts file has only test prompts, no {split} split; a "
                               "draft fitted on data (speculative's n-gram) needs one: give "
                               "speculative.draft=hf, a model draft")
        return list(self.entries)

    def load(self, split: str) -> torch.Tensor:
        raise Incompatible("prompts are text to continue: run them with --task continuation "
                           "and a model with a tokenizer (--model hf)")
