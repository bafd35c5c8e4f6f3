"""PixelCNN on 8-bit digits: the plain model, PnF's noise-conditioned one, and the
distribution-smoothing pair.
"""

from __future__ import annotations

from arbench import ModelSpec

SPECS = [
    ModelSpec(
        name="pixelcnn",
        factory="arbench_plugins.models.pixelcnn.model:PixelCNN",
        description="Masked-convolution PixelCNN with a categorical output per pixel",
        datasets=frozenset({"digits"}),
    ),
    ModelSpec(
        name="pixelcnn-smooth",
        factory="arbench_plugins.models.pixelcnn.noise_conditioned:NoiseConditionedPixelCNN",
        description="PixelCNN on noisy continuous pixels, conditioned on the noise level (PnF)",
        datasets=frozenset({"digits", "digits-low", "digits-high", "digit-groups"}),
    ),
    ModelSpec(
        name="smoothed-pixelcnn",
        factory="arbench_plugins.models.pixelcnn.smoothed_pair:SmoothedPixelCNN",
        description="Distribution smoothing on digits: a PixelCNN on smoothed digits "
                    "(sigma 0.3) and a reverse PixelCNN p(x | x~)",
        datasets=frozenset({"digits"}),
    ),
]
