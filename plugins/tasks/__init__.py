"""Built-in tasks."""

from arbench import TaskSpec, hookimpl


@hookimpl
def arbench_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="density",
            factory="arbench_plugins.tasks.density:Density",
            description="Test-set NLL in bits/dim under the sampler's generative process",
            modalities=frozenset({"image", "audio", "text", "points"}),
            default_dataset="digits",
        ),
        TaskSpec(
            name="unconditional",
            factory="arbench_plugins.tasks.unconditional:Unconditional",
            description="Draw N samples; report their NLL under the model, NFE and wall time",
            modalities=frozenset({"image", "audio", "text"}),
            default_dataset="digits",
        ),
    ]
