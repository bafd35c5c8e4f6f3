"""MADE with a mixture of logistics: the 2-D density models of distribution smoothing and the
true density.
"""

from __future__ import annotations

from arbench import ModelSpec
from arbench_plugins.models.data_groups import POINTS

SPECS = [
    ModelSpec(
        name="made-mol",
        factory="arbench_plugins.models.made.model:MADEMoL",
        description="MADE with a mixture of logistics per dimension, fitted to the clean "
                    "points; 3 and 6 mixtures swept by default",
        datasets=frozenset(POINTS),
        sweep={"mixtures": (3, 6)},
    ),
    ModelSpec(
        name="smoothed-made-mol",
        factory="arbench_plugins.models.made.model:SmoothedMADEMoL",
        description="Distribution smoothing: p(x~) on noised points and p(x | x~), one "
                    "MADE-MoL over [x~, x] (3 mixtures, sigma 0.2)",
        datasets=frozenset(POINTS),
    ),
    ModelSpec(
        name="true-density",
        factory="arbench_plugins.models.made.model:TrueDensity",
        description="The dataset's closed-form density: the NLL floor, scored, never trained",
        datasets=frozenset(POINTS),
        reference=True,
    ),
]
