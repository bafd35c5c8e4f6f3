"""Autoregressive diffusion models (ARDMs): the order-agnostic and upscale models and the image
backbone.
"""

from __future__ import annotations

from arbench import ModelSpec
from arbench_plugins.models.data_groups import FILE_IMAGES

SPECS = [
    ModelSpec(
        name="oa-ardm",
        factory="arbench_plugins.models.ardm.model:ARDM",
        description="Order-agnostic ARDM: a transformer over positions with a mask input",
        datasets=frozenset({"digits", "text", "text8"}) | FILE_IMAGES,
    ),
    ModelSpec(
        name="upscale-ardm",
        factory="arbench_plugins.models.ardm.model:UpscaleARDM",
        description="Upscale ARDM: stages of base-2 digits, each conditioned on the coarser",
        datasets=frozenset({"digits"}) | FILE_IMAGES,
    ),
]
