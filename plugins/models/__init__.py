"""Built-in models."""

from arbench import ModelSpec, hookimpl


@hookimpl
def arbench_models() -> list[ModelSpec]:
    return [
        ModelSpec(
            name="pixelcnn",
            factory="arbench_plugins.models.pixelcnn:PixelCNN",
            description="Masked-convolution PixelCNN with a categorical output per pixel",
            provides=frozenset({"causal-conditionals"}),
            datasets=frozenset({"digits"}),
        ),
    ]
