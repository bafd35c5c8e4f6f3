"""Built-in datasets."""

from arbench import DatasetSpec, hookimpl


@hookimpl
def arbench_datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec(
            name="digits",
            factory="arbench_plugins.datasets.digits:Digits",
            description="scikit-learn's 8x8 handwritten digits, 17 grey levels, fixed split",
            modality="image",
        ),
    ]
