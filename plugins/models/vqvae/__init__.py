"""Anytime sampling: the ordered VQ-VAE, its code prior, and the unordered control."""

from __future__ import annotations

from arbench import ModelSpec
from arbench_plugins.models.data_groups import FILE_IMAGES

SPECS = [
    ModelSpec(
        name="ordered-vqvae",
        factory="arbench_plugins.models.vqvae.model:OrderedVQVAE",
        description="VQ-VAE, one code per latent channel, trained with random truncation; "
                    "transformer prior",
        datasets=frozenset({"digits"}) | FILE_IMAGES,
    ),
    ModelSpec(
        name="vqvae",
        factory="arbench_plugins.models.vqvae.model:UnorderedVQVAE",
        description="The unordered control: the same VQ-VAE and prior, trained with all codes",
        datasets=frozenset({"digits"}) | FILE_IMAGES,
    ),
]
