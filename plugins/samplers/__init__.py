"""Built-in samplers."""

from arbench import SamplerSpec, hookimpl


@hookimpl
def arbench_samplers() -> list[SamplerSpec]:
    return [
        SamplerSpec(
            name="ancestral",
            factory="arbench_plugins.samplers.ancestral:Ancestral",
            description="Exact sequential sampling in the model's order: D network calls",
            requires=frozenset({"causal-conditionals"}),
            serves=frozenset({"density", "unconditional"}),
        ),
    ]
