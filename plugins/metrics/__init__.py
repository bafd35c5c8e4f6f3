"""Built-in metrics."""

from arbench import MetricSpec, hookimpl


@hookimpl
def arbench_metrics() -> list[MetricSpec]:
    return [
        MetricSpec(
            name="nll_bpd",
            factory="arbench_plugins.metrics.likelihood:BitsPerDim",
            description="Negative log-likelihood of held-out data in bits per dimension",
            direction="lower",
            unit="bits/dim",
        ),
        MetricSpec(
            name="sample_nll_bpd",
            factory="arbench_plugins.metrics.likelihood:BitsPerDim",
            description="Model NLL of the sampler's own samples in bits/dim (typicality)",
            direction="lower",
            unit="bits/dim",
        ),
    ]
