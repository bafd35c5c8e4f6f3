"""PixelCNN++ (Salimans et al., 2017): network, mixture likelihood, fast cache, the PnF prior,
its released-weight importer and the distribution-smoothing pair.
"""

from __future__ import annotations

from arbench import ModelSpec
from arbench_plugins.models.data_groups import CIFAR10_GROUPS, FILE_IMAGES

SPECS = [
    ModelSpec(
        name="pixelcnn++",
        factory="arbench_plugins.models.pixelcnnpp.model:PixelCNNPP",
        description="PixelCNN++ (discretized logistic mixture over RGB) conditioned on "
                    "the noise level: exact bits/dim at sigma 0, PnF's prior above",
        datasets=FILE_IMAGES | CIFAR10_GROUPS,
    ),
    ModelSpec(
        name="pnf-pixelcnn++",
        factory="arbench_plugins.models.pixelcnnpp.released:PnFPixelCNNPP",
        description="The PnF authors' released CIFAR-10 PixelCNN++s, one per noise level "
                    "(`arbench import pnf-pixelcnn++ DIR --out BANK`)",
        datasets=frozenset({"cifar10"}),
        ships_weights=False,
    ),
    ModelSpec(
        name="smoothed-pixelcnn++",
        factory="arbench_plugins.models.pixelcnnpp.smoothed_pair:SmoothedPixelCNNPP",
        description="Distribution smoothing on CIFAR-10-like images: PixelCNN++ p(x~) "
                    "(sigma 0.3) and p(x | x~)",
        datasets=FILE_IMAGES,
    ),
]
