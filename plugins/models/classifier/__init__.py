"""The digits classifier: the feature space of digits FID and IS."""

from __future__ import annotations

from arbench import ModelSpec

SPECS = [
    ModelSpec(
        name="digits-classifier",
        factory="arbench_plugins.models.classifier.model:DigitsClassifier",
        description="Small CNN digit classifier: the feature space of digits FID and IS",
        datasets=frozenset({"digits"}),
    ),
]
