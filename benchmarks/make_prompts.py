"""Rebuild benchmarks/prompts.jsonl: prompts in Spec-Bench's format from the embedded text.

Spec-Bench's own question file is not shipped (no downloads); these prompts stand in for
it on the shipped hf pair, which reads lowercase English. They come from the embedded
text's test split (Python's help texts, `arbench_plugins.datasets.text`), which the
pair never trained on, in two categories of 16:

* ``continue``: a test chunk (64 characters, cut mid-word as the split is): plain
  continuation, as in Spec-Bench's open-ended categories (MT-bench, question answering);
* ``recall``: a test chunk (64 characters) and its first 32 characters again: the
  continuation may copy the prompt, the regime of Spec-Bench's summarisation and
  retrieval categories, where drafts taken from the prompt (prompt lookup) pay.

`python benchmarks/make_prompts.py` writes the same file byte for byte (the text is
whatever the running Python ships, so another Python version may differ).
"""

from __future__ import annotations

import json
from pathlib import Path

from arbench_plugins.datasets.text import Text, decode_batch

PER_CATEGORY = 16
OUT = Path(__file__).with_name("prompts.jsonl")


def prompts() -> list[dict[str, object]]:
    """The prompts, ids 1.. in order: the continue category, then recall."""
    chunks = decode_batch(Text().load("test"))
    found: list[dict[str, object]] = []
    for i in range(PER_CATEGORY):
        found.append({"category": "continue", "turns": [chunks[i]]})
    for i in range(PER_CATEGORY):
        chunk = chunks[PER_CATEGORY + i]
        found.append({"category": "recall", "turns": [f"{chunk} {chunk[:32]}"]})
    return [{"question_id": number, **item} for number, item in enumerate(found, 1)]


def main() -> None:
    OUT.write_text("".join(json.dumps(item) + "\n" for item in prompts()))
    print(f"wrote {OUT} ({PER_CATEGORY * 2} prompts)")


if __name__ == "__main__":
    main()
