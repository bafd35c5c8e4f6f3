"""Built-in models: a folder per family, each declaring its specs beside its code and
its shipped checkpoints (``checkpoints/``)."""

from arbench import ModelSpec, hookimpl
from arbench_plugins.models import (
    ardm,
    classifier,
    hf,
    made,
    pixelcnn,
    pixelcnnpp,
    transformer,
    vqvae,
    wavenet,
)

FAMILIES = (pixelcnn, wavenet, pixelcnnpp, transformer, ardm, classifier, vqvae, made, hf)


@hookimpl
def arbench_models() -> list[ModelSpec]:
    """The built-in model families and the datasets each has checkpoints for."""
    return [spec for family in FAMILIES for spec in family.SPECS]
