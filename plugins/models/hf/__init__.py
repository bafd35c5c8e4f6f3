"""Hugging Face causal language models from local folders (the ``hf`` extra)."""

from __future__ import annotations

from arbench import ModelSpec

SPECS = [
    ModelSpec(
        name="hf",
        factory="arbench_plugins.models.hf.model:HuggingFace",
        description="A local Hugging Face causal LM folder (--set hf.path=DIR) over a text "
                    "dataset's tokens, with its own key/value cache; needs arbench[hf]",
        datasets=frozenset({"text", "text8", "prompts"}),
        joins_defaults=False,
    ),
]
