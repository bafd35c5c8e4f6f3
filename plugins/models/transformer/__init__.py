"""A decoder-only causal transformer over any discrete raster dataset."""

from __future__ import annotations

from arbench import ModelSpec

SPECS = [
    ModelSpec(
        name="transformer",
        factory="arbench_plugins.models.transformer.model:Transformer",
        description="Causal decoder-only transformer with a key/value cache over any "
                    "discrete raster data",
        datasets=frozenset({"digits", "text", "text8"}),
    ),
]
