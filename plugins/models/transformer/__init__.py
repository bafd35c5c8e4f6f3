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
    ModelSpec(
        name="transformer-medium",
        factory="arbench_plugins.models.transformer.model:MediumTransformer",
        description="The causal transformer at 4.8M parameters (preset medium): a target "
                    "whose step is compute, for batch-1 speculative sampling",
        datasets=frozenset({"text"}),
        joins_defaults=False,
    ),
]
